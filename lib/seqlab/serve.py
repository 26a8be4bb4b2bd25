"""Ray Serve application: one HTTP gateway in front of any number of models, each its own deployment.

    seqlab serve --models cfpb,drugs:2          # from the model registry (seqlab registry promote ...)
    seqlab serve --checkpoint results/cfpb-lstm # one checkpoint, a best.json or a search folder
    serve run serve.yaml                        # the config `seqlab registry serve-config` writes

Routes: ``POST /v1/models/<model>/classify`` (classifiers, with dynamic batching), ``.../generate``
(the char-level generator), ``.../entities/classify`` (entity-mention models: a text and character
spans), ``.../molecules/{sample,encode,decode,neighbours}`` (SMILES generators); the same without
``models/<model>/`` go to the first model of that task. ``GET /v1/models`` lists the models,
``/healthz`` and ``/readyz`` report liveness and readiness, ``/docs`` the schema, ``/`` is a page
to try the models. Bad input gets a 4xx whose body says what was wrong: ``{"error": "..."}``.

Each model is a deployment of its own (``model-<name>``) rather than one multiplexed deployment:
the models differ in task, size and traffic, so each gets its own replicas, autoscaling, batch size
and GPU share, a batch only ever holds one model's requests, and no request waits for another
model to be swapped into memory.
"""

import asyncio
import hashlib
import hmac
import json
import os
import re
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
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
PAGE = resources.files("seqlab").joinpath("web/index.html").read_text()


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    shape = EXPECTED.get(re.sub(r"^/v1/models/[^/]+/", "/v1/", request.url.path), "a JSON object")
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
    """A client error: its HTTP status and a message naming what was wrong and what is expected."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)  # picklable: it crosses from a model replica to the gateway
        self.status, self.message = status, message


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown routes and methods answer in the same ``{"error": ...}`` shape as everything else."""
    if exc.status_code == 404:
        msg = f"no route {request.method} {request.url.path[:200]}; the routes are listed at /docs"
    elif exc.status_code == 400:  # FastAPI could not read the body at all
        shape = EXPECTED.get(re.sub(r"^/v1/models/[^/]+/", "/v1/", request.url.path), "a JSON object")
        msg = f"body could not be parsed: it is not UTF-8 JSON, or it is nested too deeply; expected {shape}"
    elif exc.status_code == 405:
        msg = f"{request.method} is not allowed on {request.url.path[:200]}; the routes are listed at /docs"
    else:
        msg = str(exc.detail)
    return JSONResponse(status_code=exc.status_code, content={"error": msg}, headers=getattr(exc, "headers", None))


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


def molecules(smiles: list[str], svg: bool) -> dict:
    """``molecules`` (each checked by RDKit, drawn when asked) and the ``valid_fraction``."""
    from seqlab import chem

    out = []
    for s in smiles:
        valid = bool(s) and chem.canonical(s) is not None
        out.append({"smiles": s, "valid": valid, **({"svg": chem.svg(s)} if svg and valid else {})})
    return {"molecules": out, "valid_fraction": sum(m["valid"] for m in out) / max(len(out), 1)}


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


@contextmanager
def open_source(source: dict):
    """``(local folder, card)`` of a registry model (``{"registry": root, "ref": "name[:version]"}``,
    checked against its card) or of a checkpoint (``{"checkpoint": ...}``, card ``None``)."""
    if "ref" in source:
        from seqlab import registry

        card = registry.card(source["registry"], source["ref"])
        with local_dir(registry.uri(source["registry"], source["ref"])) as d:
            registry.verify(d, card)
            yield d, card
    else:
        with local_dir(resolve_checkpoint(source["checkpoint"])) as d:
            yield d, None


TASK_KINDS = {"classify": "classifier", "generate": "text generator", "entity": "entity-mention classifier",
              "molecule": "molecule generator"}
TASK_ROUTES = {"classify": "classify", "generate": "generate", "entity": "entities/classify",
               "molecule": "molecules/sample"}


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: 'a classifier', 'an entity-mention classifier'."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


@serve.deployment(max_ongoing_requests=64, health_check_period_s=10, graceful_shutdown_timeout_s=5)
class ModelServer:
    """One model (a registry version or a checkpoint); the gateway sends it the requests of its task.

    Classify requests are batched: the texts of every request waiting (up to ``max_batch_size``
    requests, or ``batch_wait_timeout_s``) go through one forward pass. Bad input raises ``BadInput``,
    which reaches the client as a 4xx.
    """

    def __init__(self, source: dict, key: str, *, max_texts: int = 64, max_chars: int = 20_000,
                 max_batch_size: int = 32, batch_wait_timeout_s: float = 0.01):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        with open_source(source) as (d, card):
            self.model = load_predictor(d, device)
        meta = self.model.meta
        self.name = self.model.name
        self.max_texts, self.max_chars = max_texts, max_chars
        self.classify_batch.set_max_batch_size(max_batch_size)
        self.classify_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self._info = {"key": key, "name": card["name"] if card else self.name, "version": card and card["version"],
                      "task": meta["task"], "kind": TASK_KINDS[meta["task"]], "architecture": meta["model"]["name"],
                      "labels": self.model.labels, "epoch": meta["epoch"] + 1, "device": device,
                      "metrics": {k: v for k, v in meta["metrics"].items() if k.startswith("val_")},
                      "latent_size": getattr(self.model, "latent_size", None) or None,
                      "data": meta.get("data", {}).get("name"), "max_batch_size": max_batch_size,
                      "source": source.get("ref") or source.get("checkpoint")}
        self.stats = {"requests": 0, "batches": 0, "largest_batch": 0}

    def info(self) -> dict:
        return {**self._info, "stats": dict(self.stats)}

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def classify_batch(self, requests: list[list[str]]) -> list[list[dict]]:
        # one forward pass over the texts of every request in the batch, then split back
        self.stats["requests"] += len(requests)
        self.stats["batches"] += 1
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(requests))
        flat = self.model.predict([t for texts in requests for t in texts])
        out, start = [], 0
        for texts in requests:
            out.append(flat[start : start + len(texts)])
            start += len(texts)
        return out

    async def classify(self, request: ClassifyRequest) -> dict:
        check_texts(request.texts, max_texts=self.max_texts, max_chars=self.max_chars)
        return {"model": self.name, "predictions": await self.classify_batch(request.texts)}

    def _run(self, fn, *args, **kwargs):
        """A model call whose ``SeqlabError`` (an unknown category, a token the model never saw) is a 422."""
        try:
            return fn(*args, **kwargs)
        except SeqlabError as exc:
            raise BadInput(422, str(exc)) from None

    async def generate(self, request: GenerateRequest) -> dict:
        # sampling is a loop of small steps: off the event loop, so health checks still answer
        texts = await asyncio.to_thread(self._run, self.model.generate, category=request.category,
                                        prompt=request.prompt, length=request.length,
                                        temperature=request.temperature, n=request.n, seed=request.seed)
        return {"model": self.name, "category": request.category, "texts": texts}

    def classify_entities(self, request: EntityRequest) -> list[dict]:
        """The request's mentions, each classified in its sentence (a pure method: testable without HTTP)."""
        import pandas as pd

        rows = mention_rows(request.text, request.spans, max_spans=self.max_texts, max_chars=self.max_chars)
        results = self.model.predict(pd.DataFrame(rows))
        return [{"start": sp.start, "end": sp.end, "mention": request.text[sp.start : sp.end],
                 "sentence": row["text"], **res} for sp, row, res in zip(request.spans, rows, results)]

    async def entities(self, request: EntityRequest) -> dict:
        return {"model": self.name, "entities": await asyncio.to_thread(self.classify_entities, request)}

    def _require_latent(self, route: str) -> None:
        if not self.model.latent_size:
            raise BadInput(404, f"{route} is not served by model {self._info['key']!r} "
                                f"({self.model.meta['model']['name']}): it has no latent space; use molecules/sample")

    async def sample(self, request: SampleRequest) -> dict:
        smiles = await asyncio.to_thread(self.model.sample, request.n, temperature=request.temperature,
                                         seed=request.seed)
        return {"model": self.name, **molecules(smiles, request.svg)}

    async def encode(self, request: EncodeRequest) -> dict:
        self._require_latent("molecules/encode")
        canonical = check_smiles(request.smiles, max_items=self.max_texts, max_chars=self.max_chars)
        z = await asyncio.to_thread(self._run, self.model.encode_smiles, canonical)
        return {"model": self.name, "latent_size": self.model.latent_size, "canonical": canonical,
                "latents": [[round(float(v), 6) for v in row] for row in z]}

    async def decode(self, request: DecodeRequest) -> dict:
        self._require_latent("molecules/decode")
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
        return {"model": self.name, **molecules(smiles, request.svg)}

    async def neighbours(self, request: NeighboursRequest) -> dict:
        from seqlab import chem

        self._require_latent("molecules/neighbours")
        query = check_smiles([request.smiles], max_items=1, max_chars=self.max_chars)[0]
        found = await asyncio.to_thread(self._run, self.model.neighbours, query, n=request.n, radius=request.radius,
                                        seed=request.seed)
        if request.svg:
            found = [{**m, "svg": chem.svg(m["smiles"])} for m in found]
        return {"model": self.name, "query": query, "neighbours": found}


# ---- the gateway: one HTTP application in front of every model -------------------------------------------------

DEFAULT_GUARD = {"max_body_bytes": 1 << 20, "key_digests": frozenset()}


def _guard_settings() -> dict:
    """The gateway replica's limits and keys. They live on the deployment's instance, not in a module
    global: Serve ships the ingress class by value, so a global set in ``__init__`` is not the one
    the middleware would read."""
    try:
        return serve.get_replica_context().servable_object.guard
    except Exception:  # outside a Serve replica (an app under test)
        return DEFAULT_GUARD


def load_api_keys(path: str | None) -> frozenset:
    """sha256 digests of the keys in ``path`` (one per line; '#' comments) and in ``$SEQLAB_API_KEYS``
    (comma-separated). Empty: authentication is off."""
    keys = [k.strip() for k in os.environ.get("SEQLAB_API_KEYS", "").split(",")]
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise SeqlabError(f"API key file {path} does not exist (expected one key per line)")
        keys += [line.split("#", 1)[0].strip() for line in p.read_text().splitlines()]
    return frozenset(hashlib.sha256(k.encode()).hexdigest() for k in keys if k)


class Guard:
    """ASGI middleware in front of every route: the request-size limit and API keys.

    A body over the limit is refused with 413 whether it declares its length or comes chunked (it
    is read only up to the limit); with keys configured, ``/v1/*`` needs ``X-API-Key`` (or
    ``Authorization: Bearer``): 401 without one, 403 with a wrong one.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        settings = _guard_settings()
        if settings["key_digests"] and scope["path"].startswith("/v1/"):
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if not given.strip():
                return await _refuse(send, 401, "missing API key; send it in the X-API-Key header")
            digest = hashlib.sha256(given.strip().encode()).hexdigest()
            if not any(hmac.compare_digest(digest, d) for d in settings["key_digests"]):
                return await _refuse(send, 403, "API key not accepted")
        limit = settings["max_body_bytes"]
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _refuse(send, 413, f"request body has {declared} bytes; at most {limit} are allowed")
        if scope["method"] in ("POST", "PUT", "PATCH") and not declared:
            messages, size = [], 0  # chunked: read up to the limit, then hand the messages on
            while True:
                message = await receive()
                messages.append(message)
                size += len(message.get("body", b""))
                if size > limit:
                    return await _refuse(send, 413, f"request body is over {limit} bytes, the most allowed")
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            replay = iter(messages)

            async def receive_again():
                return next(replay, None) or await receive()

            return await self.app(scope, receive_again, send)
        return await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


api.add_middleware(Guard)


class ModelInfo(BaseModel):
    key: str = Field(description="what a request names: /v1/models/<key>/...")
    name: str
    version: int | None
    task: str
    kind: str
    architecture: str
    labels: list[str]
    epoch: int
    device: str
    metrics: dict[str, float]
    latent_size: int | None
    data: str | None
    max_batch_size: int
    source: str | None
    stats: dict[str, int] = Field(description="this replica's classify requests, batches and largest batch")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


@serve.deployment(max_ongoing_requests=512, health_check_period_s=10, ray_actor_options={"num_cpus": 0.5})
@serve.ingress(api)
class Gateway:
    """Routes ``/v1/models/<key>/<task route>`` to that model's deployment; ``/v1/<task route>``
    goes to the first model of that task. Also the web page (``/``), ``/healthz``, ``/readyz``,
    ``/v1/models`` and an SVG drawing of any molecule."""

    def __init__(self, models: dict, *, api_keys_file: str | None = None, max_body_bytes: int = 1 << 20,
                 max_chars: int = 20_000):
        self.handles = models  # key -> DeploymentHandle
        self.infos: dict[str, dict] = {}
        self.max_chars = max_chars
        self.guard = {"max_body_bytes": int(max_body_bytes), "key_digests": load_api_keys(api_keys_file)}

    async def _all_infos(self) -> dict[str, dict]:
        missing = [k for k in self.handles if k not in self.infos]
        if missing:
            found = await asyncio.gather(*(self.handles[k].info.remote() for k in missing))
            self.infos.update(zip(missing, found))
        return {k: self.infos[k] for k in self.handles}  # in the order the models were given

    def _key(self, model: str) -> str:
        if model in self.handles:
            return model
        same_name = [k for k in self.handles if k.split(":")[0] == model]
        if len(same_name) == 1:
            return same_name[0]
        available = ", ".join(self.handles)
        raise BadInput(404, f"model {model!r} is not served here; available models: {available} "
                            f"(GET /v1/models lists them with their tasks)")

    async def _pick(self, model: str | None, task: str, route: str) -> str:
        infos = await self._all_infos()
        if model is None:
            key = next((k for k, i in infos.items() if i["task"] == task), None)
            if key:
                return key
            if len(infos) == 1:
                (key, info), = infos.items()
                raise BadInput(404, f"/v1/{route} is not served here: model {info['name']!r} is {_a(info['kind'])}; "
                                    f"use POST /v1/{TASK_ROUTES[info['task']]}")
            raise BadInput(404, f"no model served here is {_a(TASK_KINDS[task])}; models: "
                                + ", ".join(f"{k} ({i['kind']}: POST /v1/models/{k}/{TASK_ROUTES[i['task']]})"
                                            for k, i in infos.items()))
        key = self._key(model)
        info = infos[key]
        if info["task"] != task:
            raise BadInput(404, f"model {key!r} is a {info['kind']}, not a {TASK_KINDS[task]}; "
                                f"use POST /v1/models/{key}/{TASK_ROUTES[info['task']]}")
        return key

    async def _call(self, model: str | None, task: str, route: str, method: str, request) -> dict:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        key = await self._pick(model, task, route)
        try:  # JSON lets "\\ud800" through; such text cannot be encoded, so it is refused here, not mid-flight
            json.dumps(request.model_dump(), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadInput(422, f"the body holds an unpaired surrogate ({exc.object[exc.start:exc.end]!r}), which "
                                f"is not valid Unicode; send UTF-8 text") from None
        for attempt in range(3):
            try:
                return await getattr(self.handles[key], method).remote(request)
            except BadInput as exc:  # raised in the model's replica
                raise BadInput(exc.status, exc.message) from None
            except (ActorDiedError, ActorUnavailableError, RayActorError):
                # the replica died with the request in flight: inference has no side effects, so retry
                # on another replica (Serve starts a replacement)
                if attempt == 2:
                    raise BadInput(503, f"model {key!r} has no live replica right now; retry shortly") from None
                await asyncio.sleep(0.2 * (attempt + 1))

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(self) -> HTMLResponse:
        return HTMLResponse(PAGE)

    @api.get("/healthz")
    async def healthz(self) -> dict:
        """Liveness, and what is served; with one model, also its task, labels and metrics."""
        infos = await self._all_infos()
        first = next(iter(infos.values()))
        return {"status": "ok", "models": {k: i["task"] for k, i in infos.items()}, "model": first["name"],
                "task": first["task"], "labels": first["labels"], "epoch": first["epoch"], "metrics": first["metrics"]}

    @api.get("/readyz")
    async def readyz(self) -> JSONResponse:
        """200 when every model has a replica that answers within 5 s, else 503 naming the others."""
        async def ping(key):
            try:
                await asyncio.wait_for(self.handles[key].info.remote(), 5)
                return key, True
            except Exception:
                return key, False

        states = dict(await asyncio.gather(*(ping(k) for k in self.handles)))
        ready = all(states.values())
        return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, "models": states})

    @api.get("/v1/models", response_model=ModelsResponse)
    async def models(self) -> dict:
        return {"models": list((await self._all_infos()).values())}

    @api.get("/v1/models/{model}", response_model=ModelInfo)
    async def model_info(self, model: str) -> dict:
        """The model's card and the live counters of the replica that answers."""
        await self._all_infos()
        key = self._key(model)
        self.infos[key] = await self.handles[key].info.remote()
        return self.infos[key]

    @api.post("/v1/models/{model}/classify", response_model=ClassifyResponse)
    async def classify_with(self, model: str, request: ClassifyRequest) -> dict:
        return await self._call(model, "classify", "classify", "classify", request)

    @api.post("/v1/classify", response_model=ClassifyResponse)
    async def classify(self, request: ClassifyRequest) -> dict:
        return await self._call(None, "classify", "classify", "classify", request)

    @api.post("/v1/models/{model}/generate", response_model=GenerateResponse)
    async def generate_with(self, model: str, request: GenerateRequest) -> dict:
        return await self._call(model, "generate", "generate", "generate", request)

    @api.post("/v1/generate", response_model=GenerateResponse)
    async def generate(self, request: GenerateRequest) -> dict:
        return await self._call(None, "generate", "generate", "generate", request)

    @api.post("/v1/models/{model}/entities/classify", response_model=EntityResponse, response_model_exclude_none=True)
    async def entities_with(self, model: str, request: EntityRequest) -> dict:
        return await self._call(model, "entity", "entities/classify", "entities", request)

    @api.post("/v1/entities/classify", response_model=EntityResponse, response_model_exclude_none=True)
    async def entities(self, request: EntityRequest) -> dict:
        return await self._call(None, "entity", "entities/classify", "entities", request)

    @api.post("/v1/models/{model}/molecules/sample", response_model=MoleculesResponse, response_model_exclude_none=True)
    async def sample_with(self, model: str, request: SampleRequest) -> dict:
        return await self._call(model, "molecule", "molecules/sample", "sample", request)

    @api.post("/v1/molecules/sample", response_model=MoleculesResponse, response_model_exclude_none=True)
    async def sample(self, request: SampleRequest) -> dict:
        return await self._call(None, "molecule", "molecules/sample", "sample", request)

    @api.post("/v1/models/{model}/molecules/encode", response_model=EncodeResponse)
    async def encode_with(self, model: str, request: EncodeRequest) -> dict:
        return await self._call(model, "molecule", "molecules/encode", "encode", request)

    @api.post("/v1/molecules/encode", response_model=EncodeResponse)
    async def encode(self, request: EncodeRequest) -> dict:
        return await self._call(None, "molecule", "molecules/encode", "encode", request)

    @api.post("/v1/models/{model}/molecules/decode", response_model=MoleculesResponse, response_model_exclude_none=True)
    async def decode_with(self, model: str, request: DecodeRequest) -> dict:
        return await self._call(model, "molecule", "molecules/decode", "decode", request)

    @api.post("/v1/molecules/decode", response_model=MoleculesResponse, response_model_exclude_none=True)
    async def decode(self, request: DecodeRequest) -> dict:
        return await self._call(None, "molecule", "molecules/decode", "decode", request)

    @api.post("/v1/models/{model}/molecules/neighbours", response_model=NeighboursResponse, response_model_exclude_none=True)
    async def neighbours_with(self, model: str, request: NeighboursRequest) -> dict:
        return await self._call(model, "molecule", "molecules/neighbours", "neighbours", request)

    @api.post("/v1/molecules/neighbours", response_model=NeighboursResponse, response_model_exclude_none=True)
    async def neighbours(self, request: NeighboursRequest) -> dict:
        return await self._call(None, "molecule", "molecules/neighbours", "neighbours", request)

    @api.get("/v1/molecules/svg", response_class=Response,
             responses={200: {"content": {"image/svg+xml": {}}, "description": "the molecule drawn by RDKit"}})
    async def svg(self, smiles: str, width: int = 300, height: int = 200) -> Response:
        from seqlab import chem

        if not (50 <= width <= 2000 and 50 <= height <= 2000):
            raise BadInput(422, f"width and height must be within 50..2000 pixels, got {width}x{height}")
        canonical = check_smiles([smiles], max_items=1, max_chars=self.max_chars)[0]
        return Response(chem.svg(canonical, size=(width, height)), media_type="image/svg+xml")


def deployment_name(key: str) -> str:
    """``model-<name>`` or ``model-<name>-v<version>``: what a Serve config tunes a model by."""
    return "model-" + key.replace(":", "-v")


def max_ongoing(max_batch_size: int) -> int:
    """Room for two full batches in flight, so a batch can fill while the last one runs."""
    return max(64, 2 * max_batch_size)


def model_deployment(key: str, source: dict, *, num_replicas: int | str = 1, autoscaling: dict | None = None,
                     gpus: float = 0.0, cpus: float = 1.0, max_batch_size: int = 32, batch_wait_timeout_s: float = 0.01,
                     max_texts: int = 64, max_chars: int = 20_000, access_log: bool = True):
    """One model's deployment, named ``model-<key>`` so a Serve config can tune it by name."""
    options = {"name": deployment_name(key), "max_ongoing_requests": max_ongoing(max_batch_size),
               "ray_actor_options": {"num_cpus": cpus, "num_gpus": gpus},
               "logging_config": {"enable_access_log": access_log}}
    if autoscaling:
        options["autoscaling_config"] = autoscaling
    else:
        options["num_replicas"] = num_replicas
    return ModelServer.options(**options).bind(source, key, max_texts=max_texts, max_chars=max_chars,
                                               max_batch_size=max_batch_size,
                                               batch_wait_timeout_s=batch_wait_timeout_s)


def _gpus_per_replica(value) -> float:
    """``auto``: one GPU per replica when the cluster has GPUs, else none."""
    if value not in (None, "auto"):
        return float(value)
    import ray

    return 1.0 if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _cpus_per_replica(value, replicas: int) -> float:
    """``auto`` (or unset): one CPU per replica, or an equal share when every replica of every model
    would not otherwise fit beside the gateway (a laptop serving several models)."""
    if value not in (None, "auto"):
        return float(value)
    import ray

    total = ray.cluster_resources().get("CPU", 1.0) if ray.is_initialized() else float(os.cpu_count() or 1)
    return max(0.1, min(1.0, round((total - 0.5) / max(replicas, 1), 2)))


def build_app(args: dict) -> serve.Application:
    """Application builder for ``serve run`` and Serve config files.

    ``models``: registry references (``name`` or ``name:version``, a list or comma-separated) with
    ``registry`` (default ``$SEQLAB_REGISTRY``); or ``checkpoint``: one checkpoint folder, best.json
    or search folder. Options: ``max_batch_size``, ``batch_wait_timeout_s``, ``num_replicas``,
    ``min_replicas``/``max_replicas``/``target_ongoing_requests`` (autoscaling), ``gpus_per_replica``,
    ``cpus_per_replica`` (default: 1, or a share that fits), ``max_texts``, ``max_chars``, ``max_body_bytes``, ``api_keys_file``,
    ``access_log`` (default on: a log line per request from the gateway and every model replica).
    """
    from seqlab import registry

    args = dict(args)
    if not args.get("models") and not args.get("checkpoint"):
        raise SeqlabError("build_app needs models=<name[:version],...> (from the registry) or checkpoint=<folder "
                          "or best.json>")
    common = {"max_batch_size": int(args.get("max_batch_size", 32)),
              "batch_wait_timeout_s": float(args.get("batch_wait_timeout_s", 0.01)),
              "max_texts": int(args.get("max_texts", 64)), "max_chars": int(args.get("max_chars", 20_000)),
              "gpus": _gpus_per_replica(args.get("gpus_per_replica", "auto")),
              "cpus": args.get("cpus_per_replica"), "access_log": bool(args.get("access_log", True))}
    if args.get("max_replicas"):
        common["autoscaling"] = {"min_replicas": int(args.get("min_replicas", 1)),
                                 "max_replicas": int(args["max_replicas"]),
                                 "target_ongoing_requests": float(args.get("target_ongoing_requests", 16)),
                                 "upscale_delay_s": float(args.get("upscale_delay_s", 3)),
                                 "downscale_delay_s": float(args.get("downscale_delay_s", 60))}
    else:
        common["num_replicas"] = int(args.get("num_replicas", 1))
    if args.get("models"):
        refs = args["models"].split(",") if isinstance(args["models"], str) else list(args["models"])
        root = args.get("registry") or registry.default_root()
        sources = {}
        for text in refs:
            ref = registry.Ref.parse(text)
            registry.card(root, ref)  # fails here, naming the registry's models, rather than in a replica
            sources[str(ref)] = {"registry": root, "ref": str(ref)}
    else:
        sources = {"default": {"checkpoint": args["checkpoint"]}}
    most = common.get("autoscaling", {}).get("max_replicas") or common.get("num_replicas", 1)
    common["cpus"] = _cpus_per_replica(common["cpus"], len(sources) * most)
    handles = {key: model_deployment(key, src, **common) for key, src in sources.items()}
    gateway = Gateway.options(logging_config={"enable_access_log": common["access_log"]})
    return gateway.bind(handles, api_keys_file=args.get("api_keys_file"),
                        max_body_bytes=int(args.get("max_body_bytes", 1 << 20)), max_chars=common["max_chars"])
