"""Ray Serve application: a checkpoint behind ``POST /v1/classify`` (classifiers, with dynamic
batching), ``POST /v1/generate`` (the char-level generator) or ``POST /v1/entities/classify``
(entity-mention models: a text and character spans).

    serve run seqlab.serve:build_app checkpoint=results/cfpb-lstm/best.json
    seqlab serve --checkpoint results/cfpb-lstm/best.json

Bad input gets a 4xx whose body says what was wrong: ``{"error": "..."}``.
"""

import asyncio
import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from ray import serve

from seqlab.checkpoint import local_dir, read_meta
from seqlab.errors import SeqlabError
from seqlab.predict import EntityClassifier, TextClassifier, TextGenerator


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(description="texts to classify", examples=[["I was charged twice on my credit card."]])


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    model: str
    predictions: list[Prediction]


class GenerateRequest(BaseModel):
    category: str | None = Field(None, description="category to imitate (required by a conditional model)",
                                 examples=["Acne"])
    prompt: str = Field("", max_length=1000, description="text the generated text continues")
    length: int = Field(300, ge=1, le=2000, description="most characters to generate")
    temperature: float = Field(0.5, gt=0, le=5, description="sampling temperature ('diversity'; 0.5 in write-up 000)")
    n: int = Field(1, ge=1, le=16, description="texts to generate")
    seed: int = Field(0, ge=0, description="random seed; the same request and seed give the same texts")


class GenerateResponse(BaseModel):
    model: str
    category: str | None
    texts: list[str]


class CharSpan(BaseModel):
    start: int = Field(description="first character of the mention (0-based)")
    end: int = Field(description="one past its last character")


class EntityRequest(BaseModel):
    text: str = Field(description="a sentence or a whole document; each span is classified in its sentence",
                      examples=["IL-2 gene expression requires NF-kappa B in T cells."])
    spans: list[CharSpan] = Field(description="the mentions to classify", examples=[[{"start": 0, "end": 4}]])


class AttentionWeight(BaseModel):
    token: str
    weight: float
    mention: bool


class EntityPrediction(BaseModel):
    start: int
    end: int
    mention: str
    sentence: str
    label: str
    probabilities: dict[str, float]
    attention: list[AttentionWeight] | None = Field(None, description="LSTM+CA: weights over the sentence's tokens")


class EntityResponse(BaseModel):
    model: str
    entities: list[EntityPrediction]


api = FastAPI(title="seqlab", description="Sequence models served with Ray Serve.")


def _field(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return "".join(f"[{p}]" if p.isdigit() else (f".{p}" if i else p) for i, p in enumerate(parts)) or "body"


EXPECTED = {"/v1/classify": '{"texts": ["...", ...]}',
            "/v1/generate": '{"category": "...", "prompt": "...", "length": 300, "temperature": 0.5}',
            "/v1/entities/classify": '{"text": "...", "spans": [{"start": 0, "end": 4}, ...]}'}
ROUTES = {"classify": ("/v1/classify", "classifier"), "generate": ("/v1/generate", "text generator"),
          "entity": ("/v1/entities/classify", "entity-mention classifier")}


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    shape = EXPECTED.get(request.url.path, "a JSON object")
    expected = f"expected a JSON object {shape} sent with Content-Type: application/json"
    if first.get("type") == "json_invalid":
        msg = f"body is not valid JSON; {expected}"
    elif tuple(first.get("loc", ())) == ("body",):
        msg = f"body is not a JSON object; {expected}"
    elif first.get("type") == "missing":
        msg = f"missing field {_field(first['loc'])!r}; expected {shape}"
    else:
        msg = f"{_field(first['loc'])}: {first['msg']}"
    return JSONResponse(status_code=422, content={"error": msg})


class BadInput(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


@api.exception_handler(BadInput)
async def _bad_input(request: Request, exc: BadInput) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"error": exc.message})


def check_texts(texts: list[str], *, max_texts: int, max_chars: int) -> None:
    """The request-level rules; raises ``BadInput`` naming the first text that breaks one."""
    if not texts:
        raise BadInput(422, "texts is empty; send at least one text")
    if len(texts) > max_texts:
        raise BadInput(413, f"{len(texts)} texts in one request; at most {max_texts} are allowed")
    for i, t in enumerate(texts):
        if not t.strip():
            raise BadInput(422, f"texts[{i}] is empty; every text needs at least one non-space character")
        if len(t) > max_chars:
            raise BadInput(413, f"texts[{i}] has {len(t)} characters; at most {max_chars} are allowed")


def mention_rows(text: str, spans: list[CharSpan], *, max_spans: int, max_chars: int) -> list[dict]:
    """Each span in its sentence, as the model's rows; raises ``BadInput`` for a bad span."""
    from seqlab.spans import split_sentences

    if not spans:
        raise BadInput(422, "spans is empty; send at least one {\"start\": ..., \"end\": ...}")
    if len(spans) > max_spans:
        raise BadInput(413, f"{len(spans)} spans in one request; at most {max_spans} are allowed")
    if len(text) > max_chars:
        raise BadInput(413, f"text has {len(text)} characters; at most {max_chars} are allowed")
    for i, sp in enumerate(spans):
        if not 0 <= sp.start < sp.end <= len(text):
            why = "is empty (start == end)" if sp.start == sp.end else f"is out of range (start {sp.start}, end {sp.end})"
            raise BadInput(422, f"spans[{i}] {why}; expected 0 <= start < end <= {len(text)}, the text's length")
        if not text[sp.start : sp.end].strip():
            raise BadInput(422, f"spans[{i}] ({sp.start}-{sp.end}) covers only white space")
    sentences = split_sentences(text, keep_together=[(sp.start, sp.end) for sp in spans])
    rows = []
    for sp in spans:
        a, b = next((a, b) for a, b in sentences if a <= sp.start < b)
        rows.append({"text": text[a:b], "start": sp.start - a, "end": sp.end - a})
    return rows


def resolve_checkpoint(ref: str) -> str:
    """A checkpoint folder or URI, a search's ``best.json``, or a folder holding ``best.json``."""
    p = Path(ref)
    if p.is_dir() and (p / "best.json").exists():
        p = p / "best.json"
    if p.suffix == ".json":
        if not p.exists():
            raise SeqlabError(f"{ref} does not exist (expected a search's best.json)")
        checkpoint = json.loads(p.read_text()).get("checkpoint")
        if not checkpoint:
            raise SeqlabError(f"{ref} names no checkpoint")
        return checkpoint
    return ref


@serve.deployment(max_ongoing_requests=64, health_check_period_s=10)
@serve.ingress(api)
class ModelDeployment:
    """Any seqlab checkpoint; the routes of the other task answer 404 naming the right one."""

    def __init__(self, checkpoint: str, *, max_texts: int = 64, max_chars: int = 20_000,
                 max_batch_size: int = 32, batch_wait_timeout_s: float = 0.01):
        with local_dir(resolve_checkpoint(checkpoint)) as d:
            task = read_meta(d).get("task", "classify")
            self.model = {"generate": TextGenerator, "entity": EntityClassifier}.get(task, TextClassifier)(d)
        self.name = self.model.name
        self.max_texts, self.max_chars = max_texts, max_chars
        self.classify_batch.set_max_batch_size(max_batch_size)
        self.classify_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def _require(self, task: str) -> None:
        have = self.model.meta["task"]
        if have != task:
            other, kind = ROUTES[have]
            raise BadInput(404, f"{ROUTES[task][0]} is not served here: model {self.name!r} is a {kind}; "
                                f"use POST {other}")

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def classify_batch(self, requests: list[list[str]]) -> list[list[dict]]:
        # one forward pass over the texts of every request in the batch, then split back
        flat = self.model.predict([t for texts in requests for t in texts])
        out, start = [], 0
        for texts in requests:
            out.append(flat[start : start + len(texts)])
            start += len(texts)
        return out

    @api.post("/v1/classify", response_model=ClassifyResponse)
    async def classify(self, request: ClassifyRequest) -> dict:
        self._require("classify")
        check_texts(request.texts, max_texts=self.max_texts, max_chars=self.max_chars)
        return {"model": self.name, "predictions": await self.classify_batch(request.texts)}

    def generate_texts(self, request: GenerateRequest) -> list[str]:
        """The request's texts; raises ``BadInput`` for a category the model does not know."""
        try:
            return self.model.generate(category=request.category, prompt=request.prompt, length=request.length,
                                       temperature=request.temperature, n=request.n, seed=request.seed)
        except SeqlabError as exc:
            raise BadInput(422, str(exc)) from None

    @api.post("/v1/generate", response_model=GenerateResponse)
    async def generate(self, request: GenerateRequest) -> dict:
        self._require("generate")
        # sampling is a loop of small steps: run it off the event loop so health checks still answer
        texts = await asyncio.to_thread(self.generate_texts, request)
        return {"model": self.name, "category": request.category, "texts": texts}

    def classify_entities(self, request: EntityRequest) -> list[dict]:
        """The request's mentions, each classified in its sentence (a pure method: testable without HTTP)."""
        import pandas as pd

        rows = mention_rows(request.text, request.spans, max_spans=self.max_texts, max_chars=self.max_chars)
        results = self.model.predict(pd.DataFrame(rows))
        return [{"start": sp.start, "end": sp.end, "mention": request.text[sp.start : sp.end],
                 "sentence": row["text"], **res} for sp, row, res in zip(request.spans, rows, results)]

    @api.post("/v1/entities/classify", response_model=EntityResponse, response_model_exclude_none=True)
    async def entities(self, request: EntityRequest) -> dict:
        self._require("entity")
        entities = await asyncio.to_thread(self.classify_entities, request)
        return {"model": self.name, "entities": entities}

    @api.get("/healthz")
    async def healthz(self) -> dict:
        meta = self.model.meta
        return {"status": "ok", "model": self.name, "task": meta["task"], "labels": self.model.labels,
                "epoch": meta["epoch"] + 1,
                "metrics": {k: v for k, v in meta["metrics"].items() if k.startswith("val_")}}


def build_app(args: dict) -> serve.Application:
    """Application builder for ``serve run seqlab.serve:build_app checkpoint=... [max_texts=...]``."""
    args = dict(args)
    if "checkpoint" not in args:
        raise SeqlabError("build_app needs checkpoint=<checkpoint folder or best.json>")
    num_replicas = int(args.pop("num_replicas", 1))
    kwargs = {k: (float(v) if k == "batch_wait_timeout_s" else int(v)) for k, v in args.items() if k != "checkpoint"}
    return ModelDeployment.options(num_replicas=num_replicas).bind(args["checkpoint"], **kwargs)
