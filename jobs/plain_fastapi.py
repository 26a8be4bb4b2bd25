"""The serving benchmark's baseline: the same checkpoint behind plain FastAPI + uvicorn, without Ray.

    SEQLAB_CHECKPOINT=<checkpoint folder> uvicorn --app-dir jobs plain_fastapi:app --port 8001

One process, one request per forward pass, the same request checks as the Serve application.
"""

import asyncio
import os

from fastapi import FastAPI

from seqlab.errors import BadInput
from seqlab.serve.gateway import _bad_input
from seqlab.tasks.classify import ClassifyRequest, TextClassifier, check_texts

model = TextClassifier(os.environ["SEQLAB_CHECKPOINT"])
app = FastAPI(title="seqlab plain FastAPI baseline")
app.add_exception_handler(BadInput, _bad_input)


@app.post("/v1/classify")
async def classify(request: ClassifyRequest) -> dict:
    check_texts(request.texts, max_texts=64, max_chars=20_000)
    # off the event loop, as Serve runs sync work, so the server keeps accepting connections
    return {"model": model.name, "predictions": await asyncio.to_thread(model.predict, request.texts)}


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}
