"""Where a served model comes from: a registry version, or a checkpoint (a folder or URI, a search's
``best.json``, or a folder holding one)."""

from __future__ import annotations

import json
from contextlib import contextmanager

from seqlab.checkpoint import local_dir
from seqlab.errors import SeqlabError


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
