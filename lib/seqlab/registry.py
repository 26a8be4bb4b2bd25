"""Model registry: named, versioned copies of checkpoints, local or on S3.

    <registry>/<name>/v0001/model.safetensors    the checkpoint's files, copied as they are
                            seqlab_tokenizer.json (an older checkpoint's: tokenizer.json)
                            meta.json
                            card.json            name, version, task, model, metrics, data, commit,
                                                 source, and the sha256 of every other file

``card.json`` is written last, so a version without one is an upload cut short and is never listed
or served. Loading checks every file against the card's checksums; weights are safetensors and the
optimizer state is not copied, so nothing in a registry is ever unpickled.

    seqlab registry promote ~/.seqlab/results/cfpb-lstm --name cfpb   # the search's best trial, by its metric
    seqlab registry list
    seqlab registry show cfpb            # the newest version; cfpb:2 for version 2
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from seqlab import storage
from seqlab.errors import SeqlabError

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def default_root() -> str:
    """``$SEQLAB_REGISTRY``, else ``$SEQLAB_HOME/registry`` (default ``~/.seqlab/registry``)."""
    if os.environ.get("SEQLAB_REGISTRY"):
        return os.environ["SEQLAB_REGISTRY"]
    return str(Path(os.environ.get("SEQLAB_HOME", "~/.seqlab")).expanduser() / "registry")


@dataclass(frozen=True)
class Ref:
    """``name`` or ``name:version`` (``version`` None: the newest)."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Ref":
        name, _, version = text.strip().partition(":")
        if not NAME.match(name):
            raise SeqlabError(f"model name {name!r} is not valid; expected lower-case letters, digits, '-' or '_' "
                              f"(at most 64), optionally followed by :<version>")
        if version and not version.lstrip("v").isdigit():
            raise SeqlabError(f"model version {version!r} in {text!r} is not a number; expected e.g. {name}:2")
        return cls(name, int(version.lstrip("v")) if version else None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"


def _version_dir(root: str, name: str, version: int) -> str:
    return storage.join(root, name, f"v{version:04d}")


def versions(root: str, name: str) -> list[int]:
    """The complete versions (those with a card) of ``name``, oldest first."""
    import pyarrow.fs as pa_fs

    fs, path = storage.open_fs(storage.join(root, name))
    found = []
    for info in fs.get_file_info(pa_fs.FileSelector(path, allow_not_found=True)):
        m = re.fullmatch(r"v(\d{4,})", info.base_name)
        if info.type == pa_fs.FileType.Directory and m and storage.exists(storage.join(root, name, info.base_name,
                                                                                        "card.json")):
            found.append(int(m.group(1)))
    return sorted(found)


def names(root: str) -> list[str]:
    import pyarrow.fs as pa_fs

    fs, path = storage.open_fs(root)
    return sorted(i.base_name for i in fs.get_file_info(pa_fs.FileSelector(path, allow_not_found=True))
                  if i.type == pa_fs.FileType.Directory and NAME.match(i.base_name))


def card(root: str, ref: Ref | str) -> dict:
    """The card of a version (the newest when none is named); a clear error naming what exists."""
    ref = Ref.parse(ref) if isinstance(ref, str) else ref
    have = versions(root, ref.name)
    if not have:
        known = names(root)
        raise SeqlabError(f"no model {ref.name!r} in registry {root}; "
                          + (f"it has: {', '.join(known)}" if known else "it is empty (seqlab registry promote ...)"))
    version = ref.version or have[-1]
    if version not in have:
        raise SeqlabError(f"model {ref.name!r} has no version {version} in {root}; it has "
                          + ", ".join(str(v) for v in have))
    return json.loads(storage.read_bytes(storage.join(_version_dir(root, ref.name, version), "card.json")))


def uri(root: str, ref: Ref | str) -> str:
    """Where the files of a version lie (checked by ``verify`` when it is loaded)."""
    c = card(root, ref)
    return _version_dir(root, c["name"], c["version"])


def verify(folder: Path, card_: dict) -> None:
    """Every file of a downloaded version against the card's checksums."""
    for name, digest in card_["files"].items():
        path = Path(folder) / name
        if not path.exists():
            raise SeqlabError(f"model {card_['name']}:{card_['version']} is incomplete: {name} is missing")
        if storage.sha256_of(path) != digest:
            raise SeqlabError(f"model {card_['name']}:{card_['version']} is corrupt: {name} does not match the "
                              f"checksum in its card")


def pick_best(source: str, metric: str | None = None, mode: str | None = None) -> tuple[str, dict]:
    """The checkpoint a promotion copies, and where it came from.

    ``source`` is a checkpoint folder, a search's ``best.json``, or a search's results folder. For a
    search, the best trial by ``metric`` (default: the one the search optimised) among those that ran.
    """
    if storage.exists(storage.join(source, "meta.json")):
        return source, {"source": source}
    folder = source[: -len("/best.json")] if source.endswith("best.json") else source
    best_file = storage.join(folder, "best.json")
    if not storage.exists(best_file):
        raise SeqlabError(f"{source} is neither a checkpoint (no meta.json) nor a finished search (no best.json)")
    best = json.loads(storage.read_bytes(best_file))
    metric = metric or best.get("metric") or "val_macro_f1"
    mode = mode or ("min" if "loss" in metric else "max")
    rows = []
    table = storage.join(folder, "search.csv")
    if storage.exists(table):
        rows = [r for r in csv.DictReader(io.StringIO(storage.read_bytes(table).decode()))
                if r.get("status", "ok") == "ok" and r.get("checkpoint")]
    rows = rows or [best]
    if metric not in rows[0]:
        raise SeqlabError(f"search {folder} has no metric {metric!r}; its trials have "
                          + ", ".join(k for k in rows[0] if k.startswith(("val_", "test_"))))
    rows = [r for r in rows if r.get(metric) not in (None, "", "nan")]
    if not rows:
        raise SeqlabError(f"no trial of search {folder} has a value for {metric!r}")
    top = (max if mode == "max" else min)(rows, key=lambda r: float(r[metric]))
    return top["checkpoint"], {"source": folder, "search": best.get("search"), "trial": top.get("trial"),
                               "metric": metric, "mode": mode, "value": float(top[metric]),
                               "trials_compared": len(rows), "search_commit": best.get("commit")}


def promote(source: str, name: str, root: str | None = None, *, metric: str | None = None,
            mode: str | None = None) -> dict:
    """Copy the best checkpoint of ``source`` into the registry as the next version of ``name``."""
    from seqlab.checkpoint import local_dir, tokenizer_file
    from seqlab.checkpoint import verify as verify_checkpoint
    from seqlab.provenance import git_commit

    root = root or default_root()
    ref = Ref.parse(name)
    if ref.version is not None:
        raise SeqlabError(f"promote takes a name without a version ({ref.name!r}); versions are numbered for you")
    checkpoint, how = pick_best(source, metric, mode)
    with local_dir(checkpoint) as d:
        meta = verify_checkpoint(d)  # a half-written checkpoint is never promoted
        names = ("model.safetensors", tokenizer_file(d).name, "meta.json")
        missing = [f for f in names if not (Path(d) / f).exists()]
        if missing:
            raise SeqlabError(f"checkpoint {checkpoint} lacks {', '.join(missing)}")
        have = versions(root, ref.name)
        version = (have[-1] if have else 0) + 1
        dest = _version_dir(root, ref.name, version)
        files = {f: storage.sha256_of(Path(d) / f) for f in names}
        for f in names:
            storage.write_bytes(storage.join(dest, f), (Path(d) / f).read_bytes())
    metrics = {k: v for k, v in meta.get("metrics", {}).items() if k.startswith(("val_", "test_", "train_loss"))}
    out = {"name": ref.name, "version": version, "task": meta.get("task", "classify"),
           "model": meta["model"], "labels": meta.get("labels", []), "metrics": metrics,
           "epoch": meta.get("epoch", 0) + 1, "data": meta.get("data", {}), "checkpoint": checkpoint,
           "promotion": how, "commit": git_commit(),
           "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
    storage.write_bytes(storage.join(dest, "card.json"), json.dumps(out, indent=2).encode())  # last
    return out


def listing(root: str | None = None) -> list[dict]:
    """One row per model: its newest version, task, architecture and validation metric."""
    root = root or default_root()
    rows = []
    for name in names(root):
        have = versions(root, name)
        if not have:
            continue
        c = card(root, Ref(name, have[-1]))
        metric = c.get("promotion", {}).get("metric") or next((k for k in c["metrics"] if k.startswith("val_")), "")
        rows.append({"name": name, "version": c["version"], "versions": len(have), "task": c["task"],
                     "model": c["model"]["name"], "metric": metric, "value": c["metrics"].get(metric),
                     "promoted_at": c["promoted_at"]})
    return rows
