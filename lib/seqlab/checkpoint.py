"""Checkpoint layout, written once for every model.

    model.safetensors   weights (no pickle)
    optimizer.pt        optimizer state, loaded with ``weights_only=True``
    seqlab_tokenizer.json  the tokenizer (vocabulary built on the training split), in seqlab's own
                        schema; not Hugging Face's ``tokenizer.json`` (``seqlab export`` writes that)
    meta.json           model name + kwargs, labels, epoch, metrics, train config, data card summary,
                        and the sha256 of the other files (written last)

A checkpoint whose files do not match the checksums in its ``meta.json`` (an upload cut short) is
refused, never loaded.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from seqlab import tokenizers
from seqlab.errors import SeqlabError
from seqlab.models import build_model, entry
from seqlab.storage import sha256_of

TOKENIZER = "seqlab_tokenizer.json"
LEGACY_TOKENIZER = "tokenizer.json"  # the same schema, in checkpoints written before


def tokenizer_file(path: Path) -> Path:
    """The checkpoint's tokenizer file: ``seqlab_tokenizer.json``, or an older checkpoint's ``tokenizer.json``."""
    path = Path(path)
    return path / LEGACY_TOKENIZER if not (path / TOKENIZER).exists() and (path / LEGACY_TOKENIZER).exists() \
        else path / TOKENIZER


def save(path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict, tokenizer: dict) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / "model.safetensors"))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), path / "optimizer.pt")
    (path / TOKENIZER).write_text(json.dumps(tokenizer))
    files = {f.name: sha256_of(f) for f in sorted(path.iterdir()) if f.name != "meta.json"}
    (path / "meta.json").write_text(json.dumps({**meta, "saved_at": time.time(), "files": files}, indent=2))


def verify(path: Path, optional: tuple[str, ...] = ()) -> dict:
    """``meta.json`` of a complete checkpoint; a clear error for a missing or half-written one.

    Files in ``optional`` may be absent (a registry copy has no optimizer state); when present they
    are checked like the others."""
    path = Path(path)
    if not (path / "meta.json").exists():
        raise SeqlabError(f"{path} is not a complete seqlab checkpoint (no meta.json; expected model.safetensors, "
                          f"{TOKENIZER} and meta.json)")
    meta = read_meta(path)
    for name, digest in meta.get("files", {}).items():
        if not (path / name).exists():
            if name in optional:
                continue
            raise SeqlabError(f"checkpoint {path} is incomplete: {name} is missing")
        if sha256_of(path / name) != digest:
            raise SeqlabError(f"checkpoint {path} is corrupt or half-written: {name} does not match its checksum")
    return meta


def read_meta(path: Path) -> dict:
    return json.loads((Path(path) / "meta.json").read_text())


def load_model(path: Path, device: str = "cpu") -> tuple[nn.Module, object, dict]:
    """Rebuild the model from ``meta.json`` and its weights from safetensors; also its tokenizer."""
    path = Path(path)
    if not (path / "model.safetensors").exists() or not (path / "meta.json").exists():
        raise SeqlabError(f"{path} is not a seqlab checkpoint (expected model.safetensors and meta.json)")
    meta = verify(path, optional=("optimizer.pt",))  # inference needs the weights and the tokenizer
    meta.setdefault("task", "classify")
    kwargs = dict(meta["model"]["kwargs"])
    if "pretrained" in entry(meta["model"]["name"]).options():
        kwargs["pretrained"] = False  # the checkpoint's weights replace the pre-trained ones right away
    model = build_model(meta["model"]["name"], vocab_size=meta["vocab_size"], num_classes=len(meta["labels"]),
                        **kwargs)
    model.load_state_dict(load_file(str(path / "model.safetensors"), device=device))
    return model.to(device).eval(), tokenizers.load(tokenizer_file(path)), meta


def load_optimizer_state(path: Path) -> dict:
    return torch.load(Path(path) / "optimizer.pt", map_location="cpu", weights_only=True)


@contextmanager
def local_dir(uri: str):
    """A local folder holding the checkpoint at ``uri`` (a folder, or ``s3://`` downloaded once)."""
    from seqlab.storage import is_remote, local_copy

    if not is_remote(uri) and not Path(uri).expanduser().is_dir():
        raise SeqlabError(f"checkpoint {uri} does not exist (expected a checkpoint folder)")
    with local_copy(uri) as d:
        yield d


def epoch_folders(run_uri: str) -> list[str]:
    """URIs of a run's checkpoint folders (``epoch_001``...), oldest first."""
    import pyarrow.fs as pa_fs

    from seqlab.storage import open_fs, to_uri

    fs, path = open_fs(run_uri)
    return sorted(to_uri(i.path, fs) for i in fs.get_file_info(pa_fs.FileSelector(path, allow_not_found=True))
                  if i.type == pa_fs.FileType.Directory and i.base_name.startswith("epoch_"))


@contextmanager
def latest_complete(run_uri: str, signature: str):
    """``(uri, local folder, meta)`` of the newest checkpoint of a run whose files match their
    checksums and whose settings match, downloaded once; ``None`` when there is none.

    Workers resume from it rather than only from the checkpoints Ray has registered: a node lost
    right after writing a checkpoint, before Ray recorded it, would otherwise cost an epoch more.
    """
    from seqlab.storage import local_copy

    for uri in reversed(epoch_folders(run_uri)):
        with local_copy(uri) as d:
            try:
                meta = verify(d)
            except SeqlabError:  # half-written: an older one will do
                continue
            if meta.get("signature") == signature:
                yield uri, d, meta
                return
    yield None
