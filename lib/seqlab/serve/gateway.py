"""The gateway: one HTTP application in front of every served model.

``POST /v1/models/<model>/<route>`` goes to that model's deployment, ``POST /v1/<route>`` to the
first model of the route's task (:mod:`seqlab.serve.routes`). Also the web page (``/``),
``/healthz``, ``/readyz``, ``/v1/models`` and an SVG drawing of any molecule. Bad input gets a 4xx
whose body says what was wrong: ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqlab import chem
from seqlab.errors import BadInput, Refused
from seqlab.serve.guard import Guard
from seqlab.serve.routes import BY_PATH, ROUTES, Route, main_route, page_routes
from seqlab.tasks import a, kind
from seqlab.tasks.molecule import check_smiles

api = FastAPI(title="seqlab", description="Sequence models served with Ray Serve.")
PAGE = resources.files("seqlab").joinpath("web/index.html").read_text().replace("__ROUTES__", json.dumps(page_routes()))


def _field(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return "".join(f"[{p}]" if p.isdigit() else (f".{p}" if i else p) for i, p in enumerate(parts)) or "body"



def _expected(path: str) -> str:
    """The body a route expects, for error messages."""
    route = BY_PATH.get(re.sub(r"^/v1/(models/[^/]+/)?", "", path))
    return route.example if route else "a JSON object"


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    shape = _expected(request.url.path)
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


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown routes and methods answer in the same ``{"error": ...}`` shape as everything else."""
    if exc.status_code == 404:
        msg = f"no route {request.method} {request.url.path[:200]}; the routes are listed at /docs"
    elif exc.status_code == 400:  # FastAPI could not read the body at all
        shape = _expected(request.url.path)
        msg = f"body could not be parsed: it is not UTF-8 JSON, or it is nested too deeply; expected {shape}"
    elif exc.status_code == 405:
        msg = f"{request.method} is not allowed on {request.url.path[:200]}; the routes are listed at /docs"
    else:
        msg = str(exc.detail)
    return JSONResponse(status_code=exc.status_code, content={"error": msg}, headers=getattr(exc, "headers", None))


@api.exception_handler(BadInput)
async def _bad_input(request: Request, exc: BadInput) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"error": exc.message})



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
    source: str | None = Field(description="the registry version (name:version) or checkpoint it was loaded from")
    gpu_ids: list[str] = Field(description="the GPUs Ray reserved for the replica that answered")
    node_id: str = Field(description="the Ray node of the replica that answered")
    stats: dict[str, int] = Field(description="this replica's classify requests, batches and largest batch")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]



def _event_stream(first: list, rest) -> StreamingResponse:
    """Server-Sent Events from a replica's stream of ``(event, data)`` lists, the first already read.
    Should the replica fail mid-stream, the client (which has its 200 already) gets an ``error`` event."""
    from ray.exceptions import RayError

    def sse(items: list) -> str:
        return "".join(f"event: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in items)

    async def events():
        yield sse(first)
        try:
            async for items in rest:
                yield sse(items)
        except RayError as exc:
            yield sse([("error", {"error": f"the model's replica failed mid-stream ({type(exc).__name__}); "
                                           f"send the request again"})])

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _add_routes(route: Route) -> None:
    """``POST /v1/models/{model}/<path>`` and ``POST /v1/<path>`` for one route of the table, as
    methods of :class:`Gateway` (Serve binds endpoints whose qualified name starts with ``Gateway.``)."""

    async def with_model(self, model: str, request) -> dict:
        return await self._call(model, route, request)

    async def first_of_task(self, request) -> dict:
        return await self._call(None, route, request)

    self_ = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    body = inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=route.request)
    model = inspect.Parameter("model", inspect.Parameter.KEYWORD_ONLY, annotation=str)
    name = route.name.replace("/", "_")
    for fn, params, suffix, path in ((with_model, [self_, model, body], "_with", f"/v1/models/{{model}}/{route.path}"),
                                     (first_of_task, [self_, body], "", f"/v1/{route.path}")):
        fn.__signature__ = inspect.Signature(params)
        fn.__name__ = name + suffix
        fn.__qualname__ = f"Gateway.{name}{suffix}"
        streams = {200: {"content": {"text/event-stream": {}}, "description": 'with "stream": true: Server-Sent '
                                                                               "Events"}} if route.stream else None
        api.post(path, response_model=route.response, response_model_exclude_none=route.exclude_none,
                 responses=streams)(fn)


for _route in ROUTES:
    _add_routes(_route)


@serve.deployment(max_ongoing_requests=512, health_check_period_s=10, ray_actor_options={"num_cpus": 0.5})
@serve.ingress(api)
class Gateway:
    """Routes ``/v1/models/<key>/<route>`` to that model's deployment; ``/v1/<route>`` goes to the
    first model of the route's task."""

    def __init__(self, models: dict, *, api_key_digests: list[str] = (), max_body_bytes: int = 1 << 20,
                 max_chars: int = 20_000):
        self.handles = models  # key -> DeploymentHandle
        self.infos: dict[str, dict] = {}
        self.max_chars = max_chars
        # sha256 digests made where the app was built: no key file needs to exist on this node
        self.guard = {"max_body_bytes": int(max_body_bytes), "key_digests": frozenset(api_key_digests)}

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

    async def _pick(self, model: str | None, route: Route) -> str:
        infos = await self._all_infos()
        if model is None:
            key = next((k for k, i in infos.items() if i["task"] == route.task), None)
            if key:
                return key
            if len(infos) == 1:
                (key, info), = infos.items()
                raise BadInput(404, f"/v1/{route.path} is not served here: model {info['name']!r} is "
                                    f"{a(info['kind'])}; use POST /v1/{main_route(info['task'])}")
            raise BadInput(404, f"no model served here is {a(kind(route.task))}; models: "
                                + ", ".join(f"{k} ({i['kind']}: POST /v1/models/{k}/{main_route(i['task'])})"
                                            for k, i in infos.items()))
        key = self._key(model)
        info = infos[key]
        if info["task"] != route.task:
            raise BadInput(404, f"model {key!r} is {a(info['kind'])}, not {a(kind(route.task))}; "
                                f"use POST /v1/models/{key}/{main_route(info['task'])}")
        return key

    async def _call(self, model: str | None, route: Route, request) -> dict:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        key = await self._pick(model, route)
        try:  # JSON lets "\\ud800" through; such text cannot be encoded, so it is refused here, not mid-flight
            json.dumps(request.model_dump(), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadInput(422, f"the body holds an unpaired surrogate ({exc.object[exc.start:exc.end]!r}), which "
                                f"is not valid Unicode; send UTF-8 text") from None
        streamed = route.stream is not None and getattr(request, "stream", False)
        for attempt in range(3):
            try:
                if streamed:
                    stream = self.handles[key].options(stream=True).handle_stream.remote(route.name, request)
                    out = await stream.__anext__()  # the first events, or the refusal
                else:
                    out = await self.handles[key].handle.remote(route.name, request)
            except (ActorDiedError, ActorUnavailableError, RayActorError):
                # the replica died with the request in flight: inference has no side effects, so retry
                # on another replica (Serve starts a replacement); a stream, only before its first event
                if attempt == 2:
                    raise BadInput(503, f"model {key!r} has no live replica right now; retry shortly") from None
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if isinstance(out, Refused):  # bad input, found by the model's replica
                raise BadInput(out.status, out.message)
            return _event_stream(out, stream) if streamed else out


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

    @api.get("/v1/molecules/svg", response_class=Response,
             responses={200: {"content": {"image/svg+xml": {}}, "description": "the molecule drawn by RDKit"}})
    async def svg(self, smiles: str, width: int = 300, height: int = 200) -> Response:
        if not (50 <= width <= 2000 and 50 <= height <= 2000):
            raise BadInput(422, f"width and height must be within 50..2000 pixels, got {width}x{height}")
        canonical = check_smiles([smiles], max_items=1, max_chars=self.max_chars)[0]
        return Response(chem.svg(canonical, size=(width, height)), media_type="image/svg+xml")
