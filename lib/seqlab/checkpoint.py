"""Checkpoint layout, written once for every model.

    model.safetensors   weights (no pickle)
    optimizer.pt        optimizer state, loaded with ``weights_only=True``
    tokenizer.json      vocabulary built on the training split
    meta.json           model name + kwargs, labels, epoch, metrics, train config, data card summary
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from seqlab.errors import SeqlabError
from seqlab.models import build_model
from seqlab.tokenizer import WordTokenizer


def save(path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict, tokenizer: dict) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / "model.safetensors"))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), path / "optimizer.pt")
    (path / "tokenizer.json").write_text(json.dumps(tokenizer))
    (path / "meta.json").write_text(json.dumps(meta, indent=2))


def read_meta(path: Path) -> dict:
    return json.loads((Path(path) / "meta.json").read_text())


def load_model(path: Path, device: str = "cpu") -> tuple[nn.Module, WordTokenizer, dict]:
    """Rebuild the model from ``meta.json`` and its weights from safetensors."""
    path = Path(path)
    if not (path / "model.safetensors").exists() or not (path / "meta.json").exists():
        raise SeqlabError(f"{path} is not a seqlab checkpoint (expected model.safetensors and meta.json)")
    meta = read_meta(path)
    model = build_model(meta["model"]["name"], vocab_size=meta["vocab_size"], num_classes=len(meta["labels"]),
                        **meta["model"]["kwargs"])
    model.load_state_dict(load_file(str(path / "model.safetensors"), device=device))
    tokenizer = WordTokenizer.load(path / "tokenizer.json")
    return model.to(device).eval(), tokenizer, meta


def load_optimizer_state(path: Path) -> dict:
    return torch.load(Path(path) / "optimizer.pt", map_location="cpu", weights_only=True)


@contextmanager
def local_dir(uri: str):
    """A local folder holding the checkpoint at ``uri`` (a folder, or ``s3://`` downloaded once)."""
    if "://" not in uri:
        p = Path(uri).expanduser().resolve()
        if not p.is_dir():
            raise SeqlabError(f"checkpoint {uri} does not exist (expected a checkpoint folder)")
        yield p
        return
    import ray.train

    with ray.train.Checkpoint(uri).as_directory() as d:
        yield Path(d)
