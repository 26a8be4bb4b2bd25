"""One served model: a Serve deployment that loads a registry version or a checkpoint and answers
the routes of its task (:mod:`seqlab.serve.routes`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from ray import serve

from seqlab.errors import BadInput, Refused, SeqlabError
from seqlab.serve.options import MAX_BATCH_SIZE
from seqlab.serve.routes import BY_NAME
from seqlab.serve.sources import open_source
from seqlab.tasks import Context, kind, load_predictor

STREAM_INTERVAL_S = 0.03  # a streamed answer's items after its first character: at most ~33 a second


def replica_device(gpu_ids: list, cuda_available: bool) -> str:
    """``cuda`` only for a replica that Ray gave a GPU: one that asked for none stays off the GPUs,
    which training jobs on the same node may hold."""
    return "cuda" if gpu_ids and cuda_available else "cpu"


@serve.deployment(max_ongoing_requests=64, health_check_period_s=10, graceful_shutdown_timeout_s=5)
class ModelServer:
    """One model (a registry version or a checkpoint); the gateway sends it the requests of its task.

    Batched routes (classify) are batched: the requests waiting (up to ``max_batch_size``, or
    ``batch_wait_timeout_s``) go through one forward pass. Other routes run off the event loop, so
    health checks still answer during a long generation. Bad input raises ``BadInput``, which
    reaches the client as a 4xx.
    """

    def __init__(self, source: dict, key: str, *, max_texts: int = 64, max_chars: int = 20_000,
                 max_batch_size: int = MAX_BATCH_SIZE, batch_wait_timeout_s: float = 0.01):
        import ray
        import torch

        gpu_ids = ray.get_gpu_ids()  # the GPUs Ray reserved for this replica: none unless it asked for one
        device = replica_device(gpu_ids, torch.cuda.is_available())
        with open_source(source) as (d, card):
            self.model = load_predictor(d, device)
        meta = self.model.meta
        # what every response names: the registry version this replica serves, or the checkpoint's model
        self.name = f"{card['name']}:{card['version']}" if card else self.model.name
        self.ctx = Context(key=key, max_items=max_texts, max_chars=max_chars)
        self.batch.set_max_batch_size(max_batch_size)
        self.batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self._info = {"key": key, "name": card["name"] if card else self.name, "version": card and card["version"],
                      "task": meta["task"], "kind": kind(meta["task"]), "architecture": meta["model"]["name"],
                      "labels": self.model.labels, "epoch": meta["epoch"] + 1, "device": device,
                      "metrics": {k: v for k, v in meta["metrics"].items() if k.startswith("val_")},
                      "latent_size": getattr(self.model, "latent_size", None) or None,
                      "data": meta.get("data", {}).get("name"), "max_batch_size": max_batch_size,
                      "source": source.get("ref") or source.get("checkpoint"), "gpu_ids": [str(g) for g in gpu_ids],
                      "node_id": ray.get_runtime_context().get_node_id()}
        self.stats = {"requests": 0, "batches": 0, "largest_batch": 0}

    def info(self) -> dict:
        return {**self._info, "stats": dict(self.stats)}

    def _run(self, handler, *args):
        """A handler call whose ``SeqlabError`` (an unknown category, a token the model never saw) is a 422."""
        try:
            return handler(self.model, *args, self.ctx)
        except SeqlabError as exc:
            raise BadInput(422, str(exc)) from None

    def _run_batch(self, items: list[tuple[str, object]]) -> list[dict]:
        # one handler call per route over the requests of every caller in the batch
        out: list = [None] * len(items)
        for name in dict.fromkeys(n for n, _ in items):
            at = [i for i, (n, _) in enumerate(items) if n == name]
            for i, body in zip(at, self._run(BY_NAME[name].handler, [items[i][1] for i in at])):
                out[i] = body
        return out

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=0.01)
    async def batch(self, items: list[tuple[str, object]]) -> list[dict]:
        self.stats["requests"] += len(items)
        self.stats["batches"] += 1
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
        # the forward pass runs off the event loop, so health checks and new requests are still taken
        return await asyncio.to_thread(self._run_batch, items)

    async def handle(self, name: str, request) -> dict | Refused:
        """Answer one request of route ``name``; the response names the model. Bad input comes back as
        :class:`Refused`, an answer the gateway turns into a 4xx, not an exception Serve would log."""
        route = BY_NAME[name]
        try:
            if route.batched:
                route.check(request, self.ctx)
                body = await self.batch((name, request))
            else:
                body = await asyncio.to_thread(self._run, route.handler, request)
        except BadInput as exc:
            return Refused(exc.status, exc.message)
        return {"model": self.name, **body}

    async def handle_stream(self, name: str, request) -> AsyncIterator[list[tuple[str, dict]] | Refused]:
        """Answer one request of route ``name`` as it is made (the gateway calls this with
        ``stream=True``): lists of ``(event, data)``, each holding what was made since the last one
        (at most one every ``STREAM_INTERVAL_S`` after the first character, and fewer, larger ones for a
        slow reader); ``start`` and ``done`` name the model.
        Bad input comes back first and alone, as :class:`Refused`. The route's iterator runs in a
        thread, off the event loop, and stops when the caller goes away."""
        route = BY_NAME[name]
        try:
            events = await asyncio.to_thread(self._run, route.stream, request)
        except BadInput as exc:
            yield Refused(exc.status, exc.message)
            return
        loop, queue, stop = asyncio.get_running_loop(), asyncio.Queue(), threading.Event()
        end = object()

        def produce():
            try:
                for event in events:
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except Exception as exc:  # mid-stream: the client has its 200 already, so it gets an error event
                message = str(exc) if isinstance(exc, SeqlabError) else f"generation failed: {type(exc).__name__}"
                loop.call_soon_threadsafe(queue.put_nowait, ("error", {"error": message}))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, end)

        worker = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            finished, first_delta, last = False, False, 0.0
            while not finished:
                got = [await queue.get()]
                # after the first character, what comes within STREAM_INTERVAL_S travels as one item: each
                # item crosses two actor hops and the proxy, which cost more than a step of a small model
                while first_delta and got[-1] is not end and (left := last + STREAM_INTERVAL_S - loop.time()) > 0:
                    try:
                        got.append(await asyncio.wait_for(queue.get(), left))
                    except asyncio.TimeoutError:
                        break
                while got[-1] is not end and not queue.empty():
                    got.append(queue.get_nowait())
                finished = got[-1] is end
                items = [(kind, {"model": self.name, **data} if kind in ("start", "done") else data)
                         for kind, data in (g for g in got if g is not end)]
                first_delta = first_delta or any(kind == "delta" for kind, _ in items)
                if items:
                    yield items
                    last = loop.time()
        finally:
            stop.set()
            await worker
