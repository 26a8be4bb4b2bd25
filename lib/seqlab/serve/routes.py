"""The route table: every task route Serve answers, written once.

The gateway registers ``POST /v1/<path>`` (the first model of the route's task) and
``POST /v1/models/<model>/<path>`` from it, the model server dispatches by it, error messages take
each route's body shape from it, and the web page gets its paths from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from seqlab.tasks import classify, entity, generate, molecule


@dataclass(frozen=True)
class Route:
    path: str  # under /v1/ and /v1/models/<model>/
    task: str  # the task whose models answer it (seqlab.tasks.TASKS)
    name: str  # the endpoint's name (its operation in /docs) and the page's key for it
    request: type[BaseModel]
    response: type[BaseModel]
    # (predictor, request, Context) -> response body, run off the event loop; batched routes take
    # and return a list, one per request, and check each request first with ``check``
    handler: Callable
    example: str  # the body an error message shows as expected
    check: Callable | None = None  # (request, Context) -> None, raises BadInput; batched routes only
    batched: bool = False
    # (predictor, request, Context) -> iterator of (event, data) for a request that asks ``"stream": true``
    # (Server-Sent Events); raises BadInput or SeqlabError before the first event
    stream: Callable | None = None
    exclude_none: bool = False  # leave unset optional fields out of the response


ROUTES: list[Route] = [
    Route("classify", "classify", "classify", classify.ClassifyRequest, classify.ClassifyResponse,
          classify.classify_many, '{"texts": ["...", ...]}', check=classify.check_request, batched=True),
    Route("generate", "generate", "generate", generate.GenerateRequest, generate.GenerateResponse, generate.generate,
          '{"category": "...", "prompt": "...", "length": 300, "temperature": 0.5}', stream=generate.generate_stream),
    Route("entities/classify", "entity", "entities", entity.EntityRequest, entity.EntityResponse,
          entity.classify_entities, '{"text": "...", "spans": [{"start": 0, "end": 4}, ...]}', exclude_none=True),
    Route("molecules/sample", "molecule", "sample", molecule.SampleRequest, molecule.MoleculesResponse, molecule.sample,
          '{"n": 10, "temperature": 1.0, "seed": 0}', exclude_none=True),
    Route("molecules/encode", "molecule", "encode", molecule.EncodeRequest, molecule.EncodeResponse, molecule.encode,
          '{"smiles": ["CCO", ...]}', exclude_none=True),
    Route("molecules/decode", "molecule", "decode", molecule.DecodeRequest, molecule.MoleculesResponse, molecule.decode,
          '{"latents": [[0.1, ...], ...]}', exclude_none=True),
    Route("molecules/neighbours", "molecule", "neighbours", molecule.NeighboursRequest, molecule.NeighboursResponse,
          molecule.neighbours, '{"smiles": "CCO", "n": 20, "radius": 0.5}', exclude_none=True),
    Route("molecules/optimize", "molecule", "optimize", molecule.OptimizeRequest, molecule.OptimizeResponse,
          molecule.optimize, '{"objective": "qed", "start": "CCO", "min_similarity": 0.4, "budget": 512}',
          exclude_none=True),
]
BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}
BY_PATH: dict[str, Route] = {r.path: r for r in ROUTES}


def main_route(task: str) -> str:
    """The first route of a task: what an error message points a client to."""
    return next(r.path for r in ROUTES if r.task == task)


def page_routes() -> dict[str, str]:
    """``name -> path`` for the web page's requests."""
    return {r.name: r.path for r in ROUTES}
