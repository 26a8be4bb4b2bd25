"""The gateway's guard: a request-size limit and API keys, in front of every route (ASGI middleware)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path

from ray import serve

from seqlab.errors import SeqlabError

MAX_BODY_BYTES = 1 << 20  # the body-size limit that holds when the gateway's own settings cannot be read
DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _guard_settings() -> dict | None:
    """The gateway replica's limits and key digests, or None when they cannot be read. They live on
    the deployment's instance, not in a module global: Serve ships the ingress class by value, so a
    global set in ``__init__`` is not the one the middleware would read."""
    try:
        settings = serve.get_replica_context().servable_object.guard
        if not all(DIGEST.match(d) for d in settings["key_digests"]) or int(settings["max_body_bytes"]) < 1:
            return None
        return settings
    except Exception:  # no replica context, no gateway instance, or settings of the wrong shape
        return None


def load_api_keys(path: str | None) -> frozenset:
    """sha256 digests of the keys in ``path`` (one per line; '#' comments) and in ``$SEQLAB_API_KEYS``
    (comma-separated). Empty: authentication is off. Read where the application is built, so the
    digests (never the keys or the file) travel to every gateway replica, on whatever node it runs."""
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
        if settings is None:  # fail closed: never answer /v1/* without the key check it may need
            if scope["path"].startswith("/v1/"):
                return await _refuse(send, 503, "the gateway could not read its API key settings, so /v1/* is "
                                                "refused; redeploy the application")
            settings = {"max_body_bytes": MAX_BODY_BYTES, "key_digests": frozenset()}
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
