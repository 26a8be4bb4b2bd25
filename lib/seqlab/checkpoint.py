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

from seqlab import tokenizer as tokenizers
from seqlab.errors import SeqlabError
from seqlab.models import build_model, entry


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


def load_model(path: Path, device: str = "cpu") -> tuple[nn.Module, object, dict]:
    """Rebuild the model from ``meta.json`` and its weights from safetensors; also its tokenizer."""
    path = Path(path)
    if not (path / "model.safetensors").exists() or not (path / "meta.json").exists():
        raise SeqlabError(f"{path} is not a seqlab checkpoint (expected model.safetensors and meta.json)")
    meta = read_meta(path)
    meta.setdefault("task", "classify")
    kwargs = dict(meta["model"]["kwargs"])
    if "pretrained" in entry(meta["model"]["name"]).options():
        kwargs["pretrained"] = False  # the checkpoint's weights replace the pre-trained ones right away
    model = build_model(meta["model"]["name"], vocab_size=meta["vocab_size"], num_classes=len(meta["labels"]),
                        **kwargs)
    model.load_state_dict(load_file(str(path / "model.safetensors"), device=device))
    return model.to(device).eval(), tokenizers.load(path / "tokenizer.json"), meta


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
