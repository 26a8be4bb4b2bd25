"""TensorBoard curves of a run, wherever its storage is.

Rank 0 writes one scalar per metric and epoch. For a local folder the event files go straight into
it (``<run folder>/tensorboard``); for a remote one (``s3://.../<run>/tensorboard``) they are written
into a local temporary folder and copied there after every epoch, each file as one object, replaced
whole. A run resumed on another node writes a new event file next to the old ones; TensorBoard reads
them together, the resumed epochs hiding what the lost ones had logged (``purge_step``).

Curves matter less than checkpoints: a failed copy warns once and training goes on; the next epoch
copies the files again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from seqlab.storage import is_remote, join, write_bytes


def log_scalars(writer, metrics: dict, epoch: int) -> None:
    """A scalar per number of ``metrics`` at step ``epoch + 1`` (``val_x`` as ``val/x``, ``train_x`` as ``train/x``)."""
    for k, v in metrics.items():
        if k != "epoch" and isinstance(v, (int, float)):
            writer.add_scalar(k.replace("_", "/", 1) if k.startswith(("val_", "train_")) else k, v, epoch + 1)
    writer.flush()


def warn_once(holder, what: str, exc: BaseException, then: str = "training goes on") -> None:
    """A side job's failure (curves, tracking), printed the first time for ``holder`` (its ``warned`` flag)."""
    if holder.warned:
        return
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    print(f"[seqlab] warning: {what} ({reason}); {then}", flush=True)
    holder.warned = True


def upload_events(local: str | Path, uri: str) -> list[str]:
    """Copy the files of the local folder ``local`` to ``uri`` (same names, each replaced whole); their URIs."""
    done = []
    for f in sorted(p for p in Path(local).rglob("*") if p.is_file()):
        target = join(uri, *f.relative_to(local).parts)
        write_bytes(target, f.read_bytes())
        done.append(target)
    return done


class Curves:
    """Rank 0's TensorBoard writer for the event files of a run, in ``dest`` (a folder or a remote URI)."""

    def __init__(self, dest: str):
        self.dest = str(dest)
        self.remote = is_remote(self.dest)
        # removed when this object goes (or at exit); a remote run's event files are copied out of it
        self._tmp = tempfile.TemporaryDirectory(prefix="seqlab-tensorboard-") if self.remote else None
        self.local = self._tmp.name if self._tmp else self.dest
        self.writer = None
        self.warned = False

    def log(self, metrics: dict, epoch: int) -> None:
        """Write an epoch's metrics (0-based ``epoch``) and flush them; :meth:`upload` copies them to a remote ``dest``."""
        if self.writer is None:  # at the first epoch logged: a finished run that is started again writes no file
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run: what earlier event files logged from this epoch on is hidden (lost with the node)
            self.writer = SummaryWriter(self.local, purge_step=epoch + 1 if epoch else None)
        log_scalars(self.writer, metrics, epoch)

    def upload(self) -> bool:
        """Copy the event files to a remote ``dest``; False (and a warning, the first time) when that fails."""
        if not self.remote:
            return True
        try:
            upload_events(self.local, self.dest)
        except Exception as exc:  # noqa: BLE001  (curves must not stop training, whatever the store raised)
            warn_once(self, f"could not copy the TensorBoard event files to {self.dest}", exc,
                      "training goes on, the next epoch tries again; check the storage's credentials and space")
            return False
        return True

    def close(self) -> None:
        """Flush and close the writer, copy the files a last time, remove the temporary folder."""
        if self.writer is not None:
            self.writer.close()
            self.upload()
        if self._tmp is not None:
            self._tmp.cleanup()
