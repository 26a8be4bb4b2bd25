"""MLflow tracking: each run's parameters, per-epoch metrics, data card and best checkpoint; a search
as a parent run with one child run per trial.

Where (``--tracking-uri``): ``sqlite:///…`` or ``postgresql://…`` (a database), ``http://…`` (a
tracking server, the choice on a cluster), ``none`` (off). By default a run stored in a local folder
is tracked in SQLite next to it, ``<storage>/mlflow.db``, its artifacts in ``<storage>/mlflow-artifacts``:
``mlflow ui --backend-store-uri sqlite:///<storage>/mlflow.db`` shows them. A run stored on ``s3://``
has no folder for a database; it is tracked when ``--tracking-uri`` names one (a line says so).

The driver makes the experiment (and a search's parent run) before Ray starts, so the database is
created by one process. Rank 0 of each run logs from a background thread: opening the store happens
while the first epoch trains, and a slow or failing store warns once and never stops training. A run
started again under its name continues its MLflow run (found by its run folder).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.storage import is_remote, join
from seqlab.train.curves import warn_once

RUN_TAG = "seqlab.run"  # the run folder (or s3:// prefix): what finds a run again on resume
BEST_TAG = "seqlab.best_checkpoint"


@dataclass(frozen=True)
class Tracking:
    """Where a run's rank 0 logs: the store, the experiment and (a search's trial) the parent run."""

    uri: str
    experiment: str
    artifacts: str | None = None  # the experiment's artifact location when it is made (None: the server's)
    experiment_id: str | None = None  # None: looked up (or made) by whoever opens it first
    parent_run_id: str | None = None


def resolve_uri(tracking_uri: str | None, storage: str) -> str | None:
    """The store runs are tracked in: the flag's, else SQLite next to a local ``storage``; None: off."""
    if tracking_uri:
        return None if tracking_uri.lower() == "none" else tracking_uri
    if is_remote(storage):
        print(f"[seqlab] MLflow: runs stored on {storage.split('://')[0]}:// are tracked with --tracking-uri "
              f"(e.g. http://<tracking server>:5000); not tracked", flush=True)
        return None
    Path(storage).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(storage).resolve() / 'mlflow.db'}"


def for_runs(tracking_uri: str | None, experiment: str, storage: str) -> Tracking | None:
    """The tracking of runs stored under ``storage`` (None: not tracked)."""
    uri = resolve_uri(tracking_uri, storage)
    if uri is None:
        return None
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    return Tracking(uri, experiment, None if uri.startswith(("http://", "https://")) else join(storage, "mlflow-artifacts"))


def check_server(uri: str, timeout: float = 5.0) -> None:
    """A tracking server that does not answer is one line now, before Ray starts, not a warning per run."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SeqlabError(f"no MLflow tracking server answers at {uri} ({reason}); start one (mlflow server "
                          f"--host 0.0.0.0 --port 5000) or pass --tracking-uri none") from None


def client(uri: str):
    import logging

    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # a new database's migrations print a dozen INFO lines
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def opened(c, tracking: Tracking) -> Tracking:
    """``tracking`` with its experiment's id, the experiment made if missing."""
    from mlflow.exceptions import MlflowException

    if tracking.experiment_id is not None:
        return tracking
    found = c.get_experiment_by_name(tracking.experiment)
    if found is None:
        try:
            return dataclasses.replace(tracking, experiment_id=c.create_experiment(
                tracking.experiment, artifact_location=tracking.artifacts))
        except MlflowException:  # another process made it in between
            found = c.get_experiment_by_name(tracking.experiment)
    return dataclasses.replace(tracking, experiment_id=found.experiment_id)


def run_for(c, tracking: Tracking, key: str, name: str, tags: dict | None = None) -> tuple[str, bool]:
    """``(run id, made now)``: the MLflow run of the run folder ``key``, made if there is none."""
    found = c.search_runs([tracking.experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id, False
    tags = {RUN_TAG: key, **(tags or {})}
    if tracking.parent_run_id:
        tags["mlflow.parentRunId"] = tracking.parent_run_id
    return c.create_run(tracking.experiment_id, run_name=name, tags=tags).info.run_id, True


def log_params(c, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    # MLflow keeps values as strings of at most 6000 characters
    c.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])


def start_search(tracking: Tracking, key: str, name: str, params: dict) -> Tracking:
    """The parent run of a search (made once, continued when the search resumes), by the driver
    before any trial starts; the trials' runs become its children."""
    c = client(tracking.uri)
    tracking = opened(c, tracking)
    run_id, made = run_for(c, tracking, key, name, {"seqlab.kind": "search"})
    if made:
        log_params(c, run_id, params)
    return dataclasses.replace(tracking, parent_run_id=run_id)


def end_search(tracking: Tracking, best: dict | None) -> None:
    """Close a search's parent run: its best trial and checkpoint as tags; the trials that ASHA
    stopped early (their runs still open) marked KILLED."""
    c = client(tracking.uri)
    if best:
        for k, v in best.items():
            c.set_tag(tracking.parent_run_id, f"seqlab.best_{k}", str(v))
    children = c.search_runs([tracking.experiment_id],
                             filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
    for run in children:
        if run.info.status == "RUNNING":
            c.set_terminated(run.info.run_id, status="KILLED")
    c.set_terminated(tracking.parent_run_id, status="FINISHED")


def run_params(spec) -> dict:
    """A run's parameters as MLflow shows them: the model, its options, the train settings, the data."""
    train = {f"train.{k}": v for k, v in vars(spec.train).items()
             if k not in ("name", "storage_path", "tensorboard_dir", "tracking_uri", "experiment")}
    return {"model": spec.model.model, **{f"model.{k}": v for k, v in spec.model_kwargs.items()}, **train,
            "data.name": spec.card.get("name"), "data.sha256": spec.card.get("sha256"), "data.max_len": spec.max_len,
            "labels": len(spec.labels)}


class RunTracker:
    """Rank 0's MLflow run for one training run; every call returns at once, the work is queued."""

    def __init__(self, tracking: Tracking, spec):
        self.tracking, self.spec = tracking, spec
        self.run_id: str | None = None  # None until the store is open (and for good if it failed)
        self.warned = False
        self._jobs: queue.Queue = queue.Queue()
        self._jobs.put(self._open)  # first, from the thread, while the first epoch trains
        self._thread = threading.Thread(target=self._work, name="seqlab-mlflow", daemon=True)
        self._thread.start()

    def _put(self, fn) -> None:
        self._jobs.put(fn)

    def _work(self) -> None:
        first = True
        while True:
            fn = self._jobs.get()
            try:
                if fn is None:
                    return
                if first or self.run_id is not None:  # after a failed open, the rest is dropped
                    fn()
            except Exception as exc:  # noqa: BLE001  (tracking must not stop training, whatever the store raised)
                warn_once(self, f"MLflow tracking at {self.tracking.uri} failed", exc,
                          "training goes on untracked; check --tracking-uri (--tracking-uri none turns it off)")
            finally:
                first = False
                self._jobs.task_done()

    def _open(self) -> None:
        self.client = client(self.tracking.uri)
        self.tracking = opened(self.client, self.tracking)
        run_id, made = run_for(self.client, self.tracking, self.spec.run_uri, self.spec.name,
                               {"seqlab.task": self.spec.task})
        if made:
            log_params(self.client, run_id, run_params(self.spec))
            self.client.log_dict(run_id, self.spec.card, "data_card.json")
        self.run_id = run_id

    def log(self, metrics: dict, epoch: int, best_checkpoint: str | None) -> None:
        """An epoch's numbers (step ``epoch + 1``) and, when it is the best so far, its checkpoint."""
        now = int(time.time() * 1000)
        rows = [(k, float(v)) for k, v in metrics.items() if k != "epoch" and isinstance(v, (int, float))]

        def write():  # mlflow is imported by this thread only (two threads importing it at once break it)
            from mlflow.entities import Metric

            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, epoch + 1) for k, v in rows])
            if best_checkpoint:
                self.client.set_tag(self.run_id, BEST_TAG, best_checkpoint)

        self._put(write)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait (at most ``timeout``) until everything queued is written: before a report, after which
        ASHA may end the process."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._jobs.unfinished_tasks

    def close(self, finished: bool) -> None:
        """Mark the run FINISHED when all its epochs are done, and stop the thread."""
        if finished:
            self._put(lambda: self.client.set_terminated(self.run_id, status="FINISHED"))
        self._put(None)
        self._thread.join(timeout=30)
