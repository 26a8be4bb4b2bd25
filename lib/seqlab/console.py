"""What a person reads while Ray works: a short story on the terminal, everything in the run's log.

A command that runs Ray (``seqlab train``, ``seqlab tune``, the demo) also prints Ray's own output:
its driver's log lines, every worker's output streamed to the driver, Tune's status tables, the
raylet's warnings. :func:`story` sends all of it to a log file (file descriptors 1 and 2, so what
Ray's C++ side and child processes write goes there too) and shows on the terminal only:

- seqlab's own lines (``[seqlab] ...``) from the driver, and from the train workers the epoch
  results and a resume (the step lines become a progress bar with an ETA on a terminal);
- warnings and errors of Ray's that need the user, leaving out those known to be harmless.

With ``verbose`` the terminal shows everything, as Ray prints it. The log file gets it either way.
Only a process's entry point turns this on (:func:`enable`, from :func:`seqlab.cli.main`): a library
call, a test or a notebook keeps its own stdout.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# a line Ray streams from a worker or actor: "(RayTrainWorker pid=123, ip=10.0.0.2) text"
WORKER = re.compile(r"^\((?P<who>[^()]*?) pid=\d+(?:, ip=[\d.]+)?\) ?(?P<text>.*?)(?: \[repeated \d+x across cluster\])?$")
STEP = re.compile(r"^\[seqlab\] epoch (\d+)/(\d+) step (\d+)/(\d+) loss (\S+)")
# Ray's logging format on the driver ("2026-12-01 20:45:25,780\tWARNING file.py:12 -- message") at
# WARNING and above, and the autoscaler's warnings (a request no node can fit: the job would wait)
RAY_LEVEL = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(WARNING|ERROR|CRITICAL)\b|\(autoscaler [^)]*\) (Warning|Error))")
# seqlab lines of a train worker that are not the story: where it runs (the log keeps it)
WORKER_DETAIL = ("[seqlab] worker ",)
# Ray's warnings that need nothing from the user (seen on every run of ours)
HARMLESS = (
    "PreemptionWatcher",  # Train's watcher actor, killed with its controller
    "Token authentication is enabled",  # a local instance: its own token in ~/.ray
    "worker_start_concurrency",  # raylet: workers start slower than it hoped, on a small machine
    "worker processes are starting",
    "Tip: ",
    "RAY_TRAIN_ENABLE_PRINT_PATCH",
    "ray.init() was called",
    "Ray Train Report is",
    "Failed to establish connection to the metrics exporter agent",
    "metrics_agent",
    "is deprecated",
)

_enabled = False
_active: Story | None = None


def enable() -> None:
    """Let :func:`story` take over this process's output (the command line's entry point calls it)."""
    global _enabled
    _enabled = True


class Story:
    """Routes fd 1 and 2 into ``log_path`` and shows the story of what it holds on the terminal.

    A thread follows the log file as it grows (a file, not a pipe: a child process that inherited the
    descriptor can write to it for as long as it lives without ever blocking) and passes each line
    through :meth:`route`.
    """

    def __init__(self, log_path: Path, *, verbose: bool = False, search: bool = False):
        self.log_path, self.verbose, self.search = Path(log_path), verbose, search
        self.tty = False
        self._bar: str = ""
        self._epoch_start: dict[int, tuple[float, int]] = {}
        self._epoch_s: float | None = None

    # ---- what is shown ----

    def pick(self, line: str) -> str | None:
        """The text the terminal shows for one line of output (ANSI colours removed), or None."""
        line = ANSI.sub("", line).rstrip()
        if not line.strip():
            return None
        worker = WORKER.match(line)
        if worker:
            text = worker["text"]
            if text.startswith("[seqlab] warning"):
                return text
            if self.search or not text.startswith("[seqlab] ") or text.startswith(WORKER_DETAIL):
                return None  # a search's trials are told by its Tune callback (seqlab.tune.progress)
            return text
        if line.startswith(("[seqlab] ", "seqlab: ")):
            return line
        if RAY_LEVEL.match(line) and not any(h in line for h in HARMLESS):
            return line
        return None

    def progress(self, line: str) -> str | None:
        """A progress bar for a train worker's step line (on a terminal), else None."""
        worker = WORKER.match(ANSI.sub("", line).rstrip())
        step = STEP.match(worker["text"]) if worker and not self.search else None
        if not step:
            return None
        epoch, epochs, done, total = (int(step[i]) for i in range(1, 5))
        now = time.monotonic()
        first_t, first_done = self._epoch_start.setdefault(epoch, (now, done))
        eta = ""
        if done > first_done:
            per_step = (now - first_t) / (done - first_done)
            left = per_step * (total - done) + (epochs - epoch) * (self._epoch_s or per_step * total)
            eta = f" ETA {duration(left)}"
            if done == total:  # a whole epoch measured: the later epochs' estimate
                self._epoch_s = per_step * total
        filled = int(20 * done / max(total, 1))
        return f"epoch {epoch}/{epochs} [{'#' * filled}{'.' * (20 - filled)}] {done}/{total} loss {step[5]}{eta}"

    def _write(self, text: str) -> None:
        os.write(self._term, text.encode(errors="replace"))

    def route(self, line: str) -> None:
        if self.verbose:
            self._write(line + "\n")
            return
        if self.tty:
            bar = self.progress(line)
            if bar is not None:
                self._bar = bar
                self._write("\r\x1b[K" + bar)
                return
        text = self.pick(line)
        if text is None:
            return
        # the line takes the bar's place; the next step line draws it again
        self._write(("\r\x1b[K" if self._bar else "") + text + "\n")
        self._bar = ""

    # ---- plumbing ----

    def _follow(self, start: int) -> None:
        with open(self.log_path, "rb") as f:
            f.seek(start)
            rest = b""
            while True:
                chunk = f.read(65536)
                if chunk:
                    rest += chunk
                    *lines, rest = rest.split(b"\n")
                    for raw in lines:
                        self.route(raw.decode(errors="replace"))
                    continue
                if self._stop.is_set():
                    break
                time.sleep(0.1)
            if rest:
                self.route(rest.decode(errors="replace"))

    def __enter__(self) -> Story:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._term = os.dup(1)
        self.tty = os.isatty(self._term)
        self._saved = (os.dup(1), os.dup(2))
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        start = os.lseek(log, 0, os.SEEK_END)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(line_buffering=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, args=(start,), name="seqlab-story", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd, saved in zip((1, 2), self._saved):
            os.dup2(saved, fd)
            os.close(saved)
        self._stop.set()
        self._thread.join(timeout=10)
        if self._bar:
            self._write("\r\x1b[K")
        os.close(self._term)


def duration(seconds: float) -> str:
    """``42s`` or ``3m05s``: how long, for a person."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@contextmanager
def story(folder: str, command: str, *, verbose: bool = False, search: bool = False):
    """Within the block, this process's output goes to ``<folder>/logs/<command>-<UTC time>.log`` (a
    local folder or ``s3://``: written here, copied there at the end) and the terminal shows the story
    (everything, with ``verbose``). Does nothing unless :func:`enable` was called; inside another story
    the outer one's log gets everything."""
    global _active
    if _active is not None:  # inside another command's story (the demo's): its log, this one's kind
        was, _active.search = _active.search, search
        try:
            yield _active
        finally:
            _active.search = was
        return
    if not _enabled:
        yield None
        return
    from seqlab.storage import is_remote, join, write_bytes

    name = f"{command}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.log"
    remote = is_remote(folder)
    local = Path(tempfile.mkdtemp(prefix="seqlab-log-")) / name if remote else Path(folder) / "logs" / name
    target = join(folder, "logs", name) if remote else str(local)
    print(f"[seqlab] Ray's own output and every worker's go to {target}"
          f"{'' if verbose else ' (--verbose shows them here)'}", flush=True)
    out = Story(local, verbose=verbose, search=search)
    _active = out
    try:
        with out:
            yield out
    finally:
        _active = None
        if remote:
            try:
                write_bytes(target, local.read_bytes())
            except OSError as exc:
                print(f"[seqlab] could not copy the log to {target} ({exc}); it is in {local}", flush=True)
        print(f"[seqlab] full log: {target}", flush=True)
