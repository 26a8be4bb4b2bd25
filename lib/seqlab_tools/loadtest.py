"""HTTP load and abuse for a served model: closed-loop load at a fixed concurrency (requests/s,
latency percentiles, status counts) and hostile requests that must all be answered 4xx.

Used by ``jobs/serve_bench.py`` (the figures in results/serving.md) and the serving tests.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    wall_s: float
    latencies_ms: list[float] = field(repr=False)
    statuses: dict[int, int]
    failures: list[tuple[float, str]] = field(default_factory=list, repr=False)  # (time since start, what)

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 or s < 100)

    def row(self) -> dict:
        return {"concurrency": self.concurrency, "requests": self.requests, "rps": round(self.rps, 1),
                "p50_ms": round(self.pct(50), 2), "p99_ms": round(self.pct(99), 2),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


async def _load(url: str, bodies: list[dict], concurrency: int, n: int, headers: dict | None,
                timeout_s: float) -> LoadResult:
    import aiohttp

    latencies, statuses, failures = [], {}, []
    counter = iter(range(n))
    t0 = time.perf_counter()
    conn = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        async def worker():
            for i in counter:
                start = time.perf_counter()
                try:
                    async with session.post(url, json=bodies[i % len(bodies)], headers=headers) as r:
                        await r.read()
                        status = r.status
                except Exception as exc:  # connection refused or reset: counted, never raised
                    status = 0
                    failures.append((start - t0, type(exc).__name__))
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200 and status != 0:
                    failures.append((start - t0, f"HTTP {status}"))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(concurrency, n, time.perf_counter() - t0, latencies, statuses, failures)


def load(url: str, bodies: list[dict], concurrency: int, n: int, *, headers: dict | None = None,
         warmup: int = 0, timeout_s: float = 60) -> LoadResult:
    """``n`` POSTs of ``bodies`` (cycled) from ``concurrency`` clients that each send the next request
    as soon as the last one is answered (closed loop)."""
    if warmup:
        asyncio.run(_load(url, bodies, concurrency, warmup, headers, timeout_s))
    return asyncio.run(_load(url, bodies, concurrency, n, headers, timeout_s))


# ---- hostile requests ---------------------------------------------------------------------------------------

WHITESPACE = ["\u3000", "\u2028", "\xa0", "\u2003", "\t\n", "\u205f", "\u1680"]


def hostile_requests(n: int, seed: int = 0, *, max_texts: int = 64, max_chars: int = 20_000,
                     max_body_bytes: int = 1 << 20) -> list[tuple[str, str, bytes, dict]]:
    """``n`` requests that a classify endpoint must refuse with a 4xx: ``(kind, path, body, headers)``.

    Kinds: broken JSON, wrong types, missing or misspelt fields, limits (too many texts, too long,
    bodies over the size limit), hostile unicode (invalid UTF-8, white-space-only texts in exotic
    spaces, look-alike field names), wrong content types, deep nesting, unknown routes and models.
    """
    rng = random.Random(seed)
    js = {"Content-Type": "application/json"}

    def broken_json():
        good = json.dumps({"texts": ["a complaint about my bank"]})
        cut = rng.randrange(1, len(good) - 1)
        return good[:cut].encode() if rng.random() < 0.5 else good.replace(":", rng.choice(["", "=", "::"]), 1).encode()

    def wrong_types():
        value = rng.choice([None, 1, 1.5, True, {"a": 1}, [1, 2], [None], [["nested"]], [{"text": "a"}], "one text"])
        return json.dumps({"texts": value}).encode()

    def missing_field():
        key = rng.choice(["text", "Texts", "texts ", "txts", "", "tеxts"])  # the last has a Cyrillic е
        return json.dumps({key: ["a complaint"]}).encode()

    def too_many():
        return json.dumps({"texts": ["a"] * (max_texts + rng.randint(1, 100))}).encode()

    def too_long():
        return json.dumps({"texts": ["x" * (max_chars + rng.randint(1, 1000))]}).encode()

    def huge_body():
        return b'{"texts": ["' + b"y" * (max_body_bytes + rng.randint(1, 100_000)) + b'"]}'

    def bad_utf8():
        junk = rng.choice([b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
        return b'{"texts": ["' + junk + b'"]}'

    def blank_unicode():
        return json.dumps({"texts": ["".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 20)))]}).encode()

    def empty():
        return rng.choice([b"", b"{}", b"[]", b"null", b'{"texts": []}', b'{"texts": [""]}'])

    def deep():
        depth = rng.choice([1000, 5000, 50_000])
        return b'{"texts": ' + b"[" * depth + b"]" * depth + b"}"

    def numbers():
        return rng.choice([b'{"texts": [NaN]}', b'{"texts": [1e400]}', b'{"texts": [-Infinity]}', b'{"texts": 0x10}'])

    kinds = {"broken JSON": broken_json, "wrong types": wrong_types, "missing field": missing_field,
             "too many texts": too_many, "text too long": too_long, "body over the limit": huge_body,
             "invalid UTF-8": bad_utf8, "blank unicode text": blank_unicode, "empty": empty,
             "deep nesting": deep, "non-JSON numbers": numbers}
    out = []
    for i in range(n):
        kind = list(kinds)[i % (len(kinds) + 3)] if i % (len(kinds) + 3) < len(kinds) else None
        if kind:
            out.append((kind, "/v1/classify", kinds[kind](), js))
        elif i % 3 == 0:
            out.append(("wrong content type", "/v1/classify", b"texts=a+complaint",
                        {"Content-Type": rng.choice(["application/x-www-form-urlencoded", "text/plain"])}))
        elif i % 3 == 1:
            out.append(("unknown model", f"/v1/models/{rng.choice(['x', 'cfpb:99', '%00', 'a' * 300])}/classify",
                        json.dumps({"texts": ["a"]}).encode(), js))
        else:
            out.append(("unknown route", rng.choice(["/v1/classify/extra", "/v2/classify", "/v1/models/x/y/z"]),
                        json.dumps({"texts": ["a"]}).encode(), js))
    return out


def send_hostile(base: str, cases: list[tuple[str, str, bytes, dict]], concurrency: int = 16) -> dict:
    """Send every case; per kind, the statuses that came back."""
    import aiohttp

    async def go():
        by_kind: dict[str, dict[str, int]] = {}
        queue = iter(cases)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async def worker():
                for kind, path, body, headers in queue:
                    try:
                        async with session.post(base + path, data=body, headers=headers) as r:
                            await r.read()
                            status = str(r.status)
                    except Exception as exc:
                        status = type(exc).__name__
                    counts = by_kind.setdefault(kind, {})
                    counts[status] = counts.get(status, 0) + 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return by_kind

    return asyncio.run(go())


def sse_events(lines) -> Iterator[tuple[str, dict]]:
    """``(event, data)`` of a Server-Sent Events stream whose data are JSON, from its lines as they
    come (``requests``' ``iter_lines(decode_unicode=True)``, or decoded lines from aiohttp)."""
    kind, data = "message", []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif line.startswith("event:"):
            kind = line[len("event:"):].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:"):].removeprefix(" "))
    if data:
        yield kind, json.loads("\n".join(data))
