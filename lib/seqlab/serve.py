"""Ray Serve application: a checkpoint behind ``POST /v1/classify`` with dynamic batching.

    serve run seqlab.serve:build_app checkpoint=results/cfpb/best.json
    seqlab serve --checkpoint results/cfpb/best.json

Bad input gets a 4xx whose body says what was wrong: ``{"error": "..."}``.
"""


import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from ray import serve

from seqlab.checkpoint import local_dir
from seqlab.errors import SeqlabError
from seqlab.predict import TextClassifier


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(description="texts to classify", examples=[["I was charged twice on my credit card."]])


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    model: str
    predictions: list[Prediction]


api = FastAPI(title="seqlab", description="Sequence models served with Ray Serve.")


def _field(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return "".join(f"[{p}]" if p.isdigit() else (f".{p}" if i else p) for i, p in enumerate(parts)) or "body"


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    expected = 'expected a JSON object {"texts": ["...", ...]} sent with Content-Type: application/json'
    if first.get("type") == "json_invalid":
        msg = f"body is not valid JSON; {expected}"
    elif tuple(first.get("loc", ())) == ("body",):
        msg = f"body is not a JSON object; {expected}"
    elif first.get("type") == "missing":
        msg = f'missing field {_field(first["loc"])!r}; expected {{"texts": ["...", ...]}}'
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
class TextClassifierDeployment:
    def __init__(self, checkpoint: str, *, max_texts: int = 64, max_chars: int = 20_000,
                 max_batch_size: int = 32, batch_wait_timeout_s: float = 0.01):
        with local_dir(resolve_checkpoint(checkpoint)) as d:
            self.model = TextClassifier(d)
        self.name = f"{self.model.meta['data']['name']}-{self.model.meta['model']['name']}"
        self.max_texts, self.max_chars = max_texts, max_chars
        self.classify_batch.set_max_batch_size(max_batch_size)
        self.classify_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

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
        check_texts(request.texts, max_texts=self.max_texts, max_chars=self.max_chars)
        return {"model": self.name, "predictions": await self.classify_batch(request.texts)}

    @api.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok", "model": self.name, "labels": self.model.labels,
                "epoch": self.model.meta["epoch"] + 1, "val_macro_f1": self.model.meta["metrics"]["val_macro_f1"]}


def build_app(args: dict) -> serve.Application:
    """Application builder for ``serve run seqlab.serve:build_app checkpoint=... [max_texts=...]``."""
    args = dict(args)
    if "checkpoint" not in args:
        raise SeqlabError("build_app needs checkpoint=<checkpoint folder or best.json>")
    num_replicas = int(args.pop("num_replicas", 1))
    kwargs = {k: (float(v) if k == "batch_wait_timeout_s" else int(v)) for k, v in args.items() if k != "checkpoint"}
    return TextClassifierDeployment.options(num_replicas=num_replicas).bind(args["checkpoint"], **kwargs)
