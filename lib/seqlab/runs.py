"""The training runs under a storage path (a folder or ``s3://`` prefix), and their TensorBoard curves.

A run is a folder of the storage path that holds checkpoints (``epoch_NNN/``) or curves
(``tensorboard/``); its row comes from the ``meta.json`` of its newest checkpoint:

    seqlab runs                                     # the runs under the default storage, one line each
    seqlab runs curves cfpb-lstm --plot curves.png  # its event files into ./cfpb-lstm-tensorboard, drawn
    seqlab runs log cfpb-lstm                       # the newest log: everything its command printed, Ray's too
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pa_fs

from seqlab import storage
from seqlab.errors import SeqlabError

EVENTS = "events.out.tfevents."  # the name of every TensorBoard event file starts so


def _entries(uri: str) -> list[pa_fs.FileInfo]:
    """The entries of the folder at ``uri`` (none when it does not exist); unreachable storage is a clear error."""
    fs, path = storage.open_fs(uri)
    try:
        return fs.get_file_info(pa_fs.FileSelector(path, allow_not_found=True))
    except (OSError, ValueError) as exc:  # a missing bucket, a refused connection, wrong credentials
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = "check the path, AWS_ENDPOINT_URL and the credentials" if storage.is_remote(uri) else "expected a folder"
        raise SeqlabError(f"cannot list {uri}: {reason} ({hint})") from None


def event_files(tensorboard_uri: str) -> list[str]:
    """The names of the TensorBoard event files in a folder, oldest first."""
    return sorted(i.base_name for i in _entries(tensorboard_uri)
                  if i.type == pa_fs.FileType.File and i.base_name.startswith(EVENTS))


def _layout(run_uri: str) -> tuple[list[str], bool]:
    """A folder's checkpoint folder names (oldest first) and whether it has a ``tensorboard`` folder."""
    folders = {i.base_name for i in _entries(run_uri) if i.type == pa_fs.FileType.Directory}
    return sorted(f for f in folders if f.startswith("epoch_")), "tensorboard" in folders


def _runs(root: str) -> dict[str, tuple[list[str], bool]]:
    """The runs under the storage path ``root``, by name: their :func:`_layout`."""
    folders = sorted(i.base_name for i in _entries(root) if i.type == pa_fs.FileType.Directory)
    layouts = {name: _layout(storage.join(root, name)) for name in folders}
    return {name: layout for name, layout in layouts.items() if layout[0] or layout[1]}


def _plain_name(name: str) -> bool:
    """A run or search name that names one folder of the storage path (not a path, not . or ..)."""
    return bool(name) and "/" not in name and name not in (".", "..")


def run_names(root: str) -> list[str]:
    """The names of the runs under the storage path ``root``, sorted."""
    return list(_runs(root))


def _last_meta(run_uri: str, epochs: list[str]) -> dict:
    """``meta.json`` of the newest checkpoint that has one (a half-written one has none yet); {} if none."""
    for folder in reversed(epochs):
        try:
            return json.loads(storage.read_bytes(storage.join(run_uri, folder, "meta.json")))
        except (OSError, ValueError):
            continue
    return {}


def validation(meta: dict) -> dict[str, float]:
    """The checkpoint's headline validation metrics, without ``val_``: the task's own first, then the loss."""
    from seqlab.tasks import task_class

    metrics = meta.get("metrics", {})
    try:
        first = [task_class(meta.get("task", "classify")).metric]
    except SeqlabError:  # a task this version does not know: every validation metric
        first = sorted(k for k in metrics if k.startswith("val_"))
    keys = dict.fromkeys([*first, "val_loss"])  # ordered, without duplicates
    return {k[len("val_"):]: metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))}


def describe(root: str, name: str, layout: tuple[list[str], bool] | None = None) -> dict:
    """One run's row: name, URI, task, model, epochs done (and planned), validation metrics, curves."""
    uri = storage.join(root, name)
    epochs, has_tensorboard = layout or _layout(uri)
    meta = _last_meta(uri, epochs)
    curves = event_files(storage.join(uri, "tensorboard")) if has_tensorboard else []
    done = meta["epoch"] + 1 if "epoch" in meta else meta.get("metrics", {}).get("epoch")  # meta's epoch: from 0
    return {"name": name, "uri": uri, "task": meta.get("task"), "model": meta.get("model", {}).get("name"),
            "epochs": done, "planned": meta.get("train", {}).get("epochs"), "checkpoints": len(epochs),
            "validation": validation(meta) if meta else {}, "curves": len(curves)}


def listing(root: str) -> list[dict]:
    """One row (:func:`describe`) per run under the storage path ``root``, by name."""
    return [describe(root, name, layout) for name, layout in _runs(root).items()]


def table(rows: list[dict]) -> str:
    """The rows of :func:`listing` as a plain text table."""
    lines = [("NAME", "TASK", "MODEL", "EPOCHS", "VALIDATION (LAST EPOCH)", "CURVES")]
    for r in rows:
        epochs = "-" if r["epochs"] is None else f"{r['epochs']}" + (f"/{r['planned']}" if r["planned"] else "")
        shown = "  ".join(f"{k} {v:.4f}" for k, v in r["validation"].items()) or "-"
        lines.append((r["name"], r["task"] or "-", r["model"] or "-", epochs, shown,
                      f"yes ({r['curves']} file{'s' * (r['curves'] > 1)})" if r["curves"] else "no"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(line, widths)), line[-1]]) for line in lines)


def download_curves(root: str, name: str, out: str | Path) -> list[Path]:
    """Copy the event files of run ``name`` (``<root>/<name>/tensorboard/``) into the local folder ``out``;
    the files copied. An unknown run or one without curves is a one-line error."""
    uri = storage.join(root, name, "tensorboard")
    found = event_files(uri) if _plain_name(name) else []
    if not found:
        names = run_names(root)
        if name not in names:
            there = f"runs there: {', '.join(names)}" if names else "there are no runs there"
            raise SeqlabError(f"no run named {name!r} under {root}; {there}")
        why = "; a run trained on s3:// before seqlab copied curves there has none" if storage.is_remote(root) else ""
        raise SeqlabError(f"run {name!r} has no TensorBoard curves (no event files in {uri}/){why}")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise SeqlabError(f"{out} exists and is not a folder; choose another --out")
    storage.download_dir(uri, out)
    return [out / f for f in found]


def newest_log(root: str, name: str) -> str:
    """The URI of the newest log file of run or search ``name`` (``<root>/<name>/logs/``, where
    :mod:`seqlab.console` writes each command's whole output). An unknown name is a one-line error."""
    uri = storage.join(root, name, "logs")
    found = sorted(i.base_name for i in _entries(uri) if i.type == pa_fs.FileType.File and i.base_name.endswith(".log")
                   ) if _plain_name(name) else []
    if not found:
        folders = sorted(i.base_name for i in _entries(root) if i.type == pa_fs.FileType.Directory)
        logged = [f for f in folders if any(i.base_name.endswith(".log") for i in _entries(storage.join(root, f, "logs")))]
        there = f"those with logs: {', '.join(logged)}" if logged else "none there has one"
        raise SeqlabError(f"no log of a run or search named {name!r} under {root}; {there}")
    return storage.join(uri, found[-1])  # the names start with the command and its UTC start time


def plot_curves(folder: str | Path, png: str | Path, title: str) -> list[str]:
    """Draw the train and validation curves of the event files in ``folder`` into ``png``, a panel per
    metric; the metrics drawn."""
    from seqlab.report import plot_run, tensorboard_history

    history = tensorboard_history(folder)
    if history.empty:
        raise SeqlabError(f"the event files in {folder} hold no scalars to plot")
    return plot_run(history, Path(png), title)
