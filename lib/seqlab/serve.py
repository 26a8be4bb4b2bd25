"""Ray Serve application: a checkpoint behind ``POST /v1/classify`` (classifiers, with dynamic
batching), ``POST /v1/generate`` (the char-level generator), ``POST /v1/entities/classify``
(entity-mention models: a text and character spans) or ``/v1/molecules/*`` (SMILES generators:
sample, encode, decode, neighbours, and an SVG drawing of any molecule).

    serve run seqlab.serve:build_app checkpoint=results/cfpb-lstm/best.json
    seqlab serve --checkpoint results/cfpb-lstm/best.json

Bad input gets a 4xx whose body says what was wrong: ``{"error": "..."}``.
"""

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from ray import serve

from seqlab.checkpoint import local_dir
from seqlab.errors import SeqlabError
from seqlab.predict import load_predictor


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


class Molecule(BaseModel):
    smiles: str
    valid: bool = Field(description="RDKit parses it")
    svg: str | None = Field(None, description="RDKit drawing (when the request asked for svg)")


class SampleRequest(BaseModel):
    n: int = Field(10, ge=1, le=1000, description="molecules to sample")
    temperature: float = Field(1.0, gt=0, le=5, description="sampling temperature")
    seed: int = Field(0, ge=0, description="random seed; the same request and seed give the same molecules")
    svg: bool = Field(False, description="add an SVG drawing of every valid molecule")


class MoleculesResponse(BaseModel):
    model: str
    molecules: list[Molecule]
    valid_fraction: float


class EncodeRequest(BaseModel):
    smiles: list[str] = Field(description="molecules to encode", examples=[["CCO", "c1ccccc1O"]])


class EncodeResponse(BaseModel):
    model: str
    latent_size: int
    latents: list[list[float]]
    canonical: list[str]


class DecodeRequest(BaseModel):
    latents: list[list[float]] = Field(description="latent vectors, each of the model's latent size")
    temperature: float = Field(0.0, ge=0, le=5, description="0 decodes greedily")
    seed: int = Field(0, ge=0)
    svg: bool = Field(False, description="add an SVG drawing of every valid molecule")


class NeighboursRequest(BaseModel):
    smiles: str = Field(description="the molecule to start from", examples=["CC(=O)Oc1ccccc1C(=O)O"])
    n: int = Field(20, ge=1, le=200, description="points drawn around its latent code")
    radius: float = Field(0.5, gt=0, le=10, description="standard deviation of the points around the code")
    seed: int = Field(0, ge=0)
    svg: bool = Field(False, description="add an SVG drawing of every molecule")


class Neighbour(BaseModel):
    smiles: str
    distance: float = Field(description="latent distance from the query's code")
    similarity: float = Field(description="Tanimoto similarity to the query (Morgan fingerprints)")
    svg: str | None = None


class NeighboursResponse(BaseModel):
    model: str
    query: str
    neighbours: list[Neighbour]


api = FastAPI(title="seqlab", description="Sequence models served with Ray Serve.")


def _field(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return "".join(f"[{p}]" if p.isdigit() else (f".{p}" if i else p) for i, p in enumerate(parts)) or "body"


EXPECTED = {"/v1/classify": '{"texts": ["...", ...]}',
            "/v1/generate": '{"category": "...", "prompt": "...", "length": 300, "temperature": 0.5}',
            "/v1/entities/classify": '{"text": "...", "spans": [{"start": 0, "end": 4}, ...]}',
            "/v1/molecules/sample": '{"n": 10, "temperature": 1.0, "seed": 0}',
            "/v1/molecules/encode": '{"smiles": ["CCO", ...]}',
            "/v1/molecules/decode": '{"latents": [[0.1, ...], ...]}',
            "/v1/molecules/neighbours": '{"smiles": "CCO", "n": 20, "radius": 0.5}'}
ROUTES = {"classify": ("/v1/classify", "classifier"), "generate": ("/v1/generate", "text generator"),
          "entity": ("/v1/entities/classify", "entity-mention classifier"),
          "molecule": ("/v1/molecules/sample", "molecule generator")}


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    shape = EXPECTED.get(request.url.path, "a JSON object")
    expected = f"expected a JSON object {shape} sent with Content-Type: application/json"
    if tuple(first.get("loc", ()))[:1] == ("query",):
        msg = f"query parameter {first['loc'][-1]!r}: {first['msg']}; expected ?smiles=<SMILES>[&width=300&height=200]"
    elif first.get("type") == "json_invalid":
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


def check_smiles(smiles: list[str], *, max_items: int, max_chars: int) -> list[str]:
    """Canonical forms of the request's molecules; raises ``BadInput`` with RDKit's reason for the first bad one."""
    from seqlab import chem

    if not smiles:
        raise BadInput(422, "smiles is empty; send at least one SMILES string")
    if len(smiles) > max_items:
        raise BadInput(413, f"{len(smiles)} molecules in one request; at most {max_items} are allowed")
    out = []
    for i, s in enumerate(smiles):
        if len(s) > max_chars:
            raise BadInput(413, f"smiles[{i}] has {len(s)} characters; at most {max_chars} are allowed")
        why = chem.parse_error(s)
        if why:
            raise BadInput(422, f"smiles[{i}] {s[:80]!r} is not a valid molecule: {why}")
        out.append(chem.canonical(s))
    return out


def molecules(smiles: list[str], svg: bool) -> list[dict]:
    from seqlab import chem

    out = []
    for s in smiles:
        valid = bool(s) and chem.canonical(s) is not None
        out.append({"smiles": s, "valid": valid, **({"svg": chem.svg(s)} if svg and valid else {})})
    return out


def resolve_checkpoint(ref: str) -> str:
    """A checkpoint folder or URI, a search's ``best.json``, or a folder (or ``s3://`` prefix) holding it."""
    from seqlab import storage

    if not ref.endswith(".json") and storage.exists(storage.join(ref, "best.json")):
        ref = storage.join(ref, "best.json")
    if ref.endswith(".json"):
        if not storage.exists(ref):
            raise SeqlabError(f"{ref} does not exist (expected a search's best.json)")
        checkpoint = json.loads(storage.read_bytes(ref)).get("checkpoint")
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
            self.model = load_predictor(d)
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

    def _require_latent(self, route: str) -> None:
        self._require("molecule")
        if not self.model.latent_size:
            raise BadInput(404, f"{route} is not served here: model {self.name!r} "
                                f"({self.model.meta['model']['name']}) has no latent space; use POST /v1/molecules/sample")

    def _run(self, fn, *args, **kwargs):
        """A model call whose ``SeqlabError`` (e.g. a token the model never saw) is the client's 422."""
        try:
            return fn(*args, **kwargs)
        except SeqlabError as exc:
            raise BadInput(422, str(exc)) from None

    @api.post("/v1/molecules/sample", response_model=MoleculesResponse, response_model_exclude_none=True)
    async def sample(self, request: SampleRequest) -> dict:
        self._require("molecule")
        smiles = await asyncio.to_thread(self.model.sample, request.n, temperature=request.temperature,
                                         seed=request.seed)
        mols = molecules(smiles, request.svg)
        return {"model": self.name, "molecules": mols, "valid_fraction": sum(m["valid"] for m in mols) / len(mols)}

    @api.post("/v1/molecules/encode", response_model=EncodeResponse)
    async def encode(self, request: EncodeRequest) -> dict:
        self._require_latent("/v1/molecules/encode")
        canonical = check_smiles(request.smiles, max_items=self.max_texts, max_chars=self.max_chars)
        z = await asyncio.to_thread(self._run, self.model.encode_smiles, canonical)
        return {"model": self.name, "latent_size": self.model.latent_size, "canonical": canonical,
                "latents": [[round(float(v), 6) for v in row] for row in z]}

    @api.post("/v1/molecules/decode", response_model=MoleculesResponse, response_model_exclude_none=True)
    async def decode(self, request: DecodeRequest) -> dict:
        self._require_latent("/v1/molecules/decode")
        size = self.model.latent_size
        if not request.latents:
            raise BadInput(422, f"latents is empty; send at least one vector of {size} numbers")
        if len(request.latents) > self.max_texts:
            raise BadInput(413, f"{len(request.latents)} latents in one request; at most {self.max_texts} are allowed")
        for i, z in enumerate(request.latents):
            if len(z) != size:
                raise BadInput(422, f"latents[{i}] has {len(z)} values; this model's latent vectors have {size}")
            if not all(abs(v) < 1e6 for v in z):
                raise BadInput(422, f"latents[{i}] holds a value that is not a finite number below 1e6")
        smiles = await asyncio.to_thread(self.model.decode, request.latents, temperature=request.temperature,
                                         seed=request.seed)
        mols = molecules(smiles, request.svg)
        return {"model": self.name, "molecules": mols, "valid_fraction": sum(m["valid"] for m in mols) / len(mols)}

    @api.post("/v1/molecules/neighbours", response_model=NeighboursResponse, response_model_exclude_none=True)
    async def neighbours(self, request: NeighboursRequest) -> dict:
        from seqlab import chem

        self._require_latent("/v1/molecules/neighbours")
        query = check_smiles([request.smiles], max_items=1, max_chars=self.max_chars)[0]
        found = await asyncio.to_thread(self._run, self.model.neighbours, query, n=request.n, radius=request.radius,
                                        seed=request.seed)
        if request.svg:
            found = [{**m, "svg": chem.svg(m["smiles"])} for m in found]
        return {"model": self.name, "query": query, "neighbours": found}

    @api.get("/v1/molecules/svg", response_class=Response,
             responses={200: {"content": {"image/svg+xml": {}}, "description": "the molecule drawn by RDKit"}})
    async def svg(self, smiles: str, width: int = 300, height: int = 200) -> Response:
        from seqlab import chem

        if not (50 <= width <= 2000 and 50 <= height <= 2000):
            raise BadInput(422, f"width and height must be within 50..2000 pixels, got {width}x{height}")
        canonical = check_smiles([smiles], max_items=1, max_chars=self.max_chars)[0]
        return Response(chem.svg(canonical, size=(width, height)), media_type="image/svg+xml")

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
