"""Fault injection on a real cluster: the scenarios of the reliability tests and ``jobs/reliability.py``.

Each scenario submits the train job (or a search) to a :class:`~seqlab_tools.cluster.LocalCluster`
with ``ray job submit``, waits until a checkpoint exists and the next epoch is under way,
injects one fault, and follows the run to its end (resubmitting the same run name where the
fault ends the job). It returns what happened: the wall time, the epoch the run resumed from, the
work done after the last checkpoint (lost and repeated), and the final metrics.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass, field

from seqlab import storage
from seqlab.checkpoint import epoch_folders, verify
from seqlab.errors import SeqlabError
from seqlab.tune.study import study_trials
from seqlab_tools.cluster import LocalCluster, S3Server, processes, wait_for

# Small enough for 2 CPU cores, big enough that an epoch lasts a few seconds (room to inject a fault)
# --verbose: the scenarios read the workers' own lines (their pids and nodes) from the job's log
TRAIN = ("python jobs/train.py --dataset cfpb --limit 4000 --max-len 192 --embed-dim 48 --hidden 128 --batch-size 16 "
         "--num-workers 2 --cpus-per-worker 1 --seed 0 --verbose")


@dataclass
class Outcome:
    fault: str
    injected: str
    status: str
    wall_s: float
    jobs: list[str]
    epochs: int = 0
    resumed_from: list[int] = field(default_factory=list)  # epochs the run restarted at (1-based)
    lost_s: float | None = None  # work done after the last checkpoint, before the fault
    epoch_s: float | None = None
    final: dict = field(default_factory=dict)  # the last epoch's metrics
    logs: str = ""

    @property
    def epochs_repeated(self) -> float | None:
        return None if self.lost_s is None or not self.epoch_s else self.lost_s / self.epoch_s


def train_command(name: str, storage_uri: str, epochs: int, max_failures: int = 2) -> str:
    return f"{TRAIN} --epochs {epochs} --max-failures {max_failures} --name {name} --storage-path {storage_uri}"


def checkpoints(run_uri: str) -> dict[int, dict]:
    """``meta.json`` of every checkpoint folder of a run that has one, by epoch (1-based)."""
    out = {}
    for uri in epoch_folders(run_uri):
        try:
            meta = json.loads(storage.read_bytes(f"{uri}/meta.json"))
        except (OSError, ValueError):
            continue
        out[meta["epoch"] + 1] = meta
    return out


def verify_checkpoints(run_uri: str) -> dict[int, str]:
    """Every checkpoint folder of a run checked against its checksums: epoch -> "ok" or the problem."""
    return {int(uri.rsplit("_", 1)[1]): checkpoint_problem(uri) or "ok" for uri in epoch_folders(run_uri)}


def checkpoint_problem(uri: str) -> str | None:
    """What is wrong with one checkpoint folder against its checksums; None when it is whole."""
    with storage.local_copy(uri) as d:
        try:
            verify(d)
        except SeqlabError as exc:
            return str(exc)
    return None


def _into_next_epoch(run_uri: str, after_epoch: int, ended=lambda: False, timeout: float = 600) -> dict:
    """Wait for the checkpoint of ``after_epoch`` and then for half of the next epoch to pass;
    ``ended()`` is polled meanwhile (it may submit the run again, or raise when the run is over)."""
    def saved():
        return checkpoints(run_uri).get(after_epoch) or ended()

    meta = wait_for(saved, timeout, f"checkpoint of epoch {after_epoch}")
    time.sleep(0.5 * meta["metrics"]["epoch_time_s"])
    return meta


def worker_pids(logs: str) -> dict[int, int]:
    """Rank -> pid of the latest train workers, from their start lines in the job logs."""
    return {int(r): int(p) for r, p in re.findall(r"\[seqlab\] worker (\d+)/\d+ on node \w+ \(pid (\d+)", logs)}


def worker_nodes(logs: str) -> set[str]:
    return set(re.findall(r"\[seqlab\] worker \d+/\d+ on node (\w+)", logs))


def resumed_epochs(logs: str) -> list[int]:
    return [int(e) for e in re.findall(r"\[seqlab\] resuming from epoch (\d+)", logs)]


def _live_driver(cluster: LocalCluster, job_id: str) -> int | None:
    """The pid of the job's driver (its entrypoint's python) while it runs on this machine, else None."""
    driver = cluster.client().get_job_info(job_id).driver_info
    pid = driver and driver.pid
    if not pid:  # no driver yet
        return None
    args = processes().get(int(pid), (0, []))[1]
    return int(pid) if any(a.endswith(".py") and "jobs/" in a for a in args) else None


def driver_pid(cluster: LocalCluster, job_id: str) -> int:
    """The pid of the job's driver (its entrypoint's python), checked on this machine's process table."""
    pid = _live_driver(cluster, job_id)
    if pid is None:
        status = cluster.client().get_job_status(job_id)
        raise SeqlabError(f"job {job_id} ({status}): its driver is not running on this machine; its log ends:\n"
                          f"{cluster.logs(job_id)[-4000:]}")
    return pid


RESUBMIT = {"kill-driver", "restart-s3"}  # faults that can end the job: the run is submitted again


def run_fault(cluster: LocalCluster, fault: str, name: str, storage_uri: str, *, epochs: int = 3,
              s3: S3Server | None = None, s3_down_s: float = 8.0) -> Outcome:
    """Train ``name`` and inject ``fault``: none, kill-worker, stop-node, kill-driver or restart-s3, or
    several joined by ``+`` (each in its own epoch: the first in epoch 2, the next in epoch 3, ...). A job
    that a fault ended is submitted again under the same run name, before the next fault if any."""
    run_uri = storage.join(storage_uri, name)
    t0 = time.monotonic()
    jobs = [cluster.submit(train_command(name, storage_uri, epochs))]
    chosen = [] if fault == "none" else fault.split("+")
    if len(chosen) >= epochs:
        raise SeqlabError(f"{len(chosen)} faults need more than {epochs} epochs (one fault per epoch from epoch 2)")
    injected, lost = [], None

    def resubmitted() -> bool:
        """After a fault that can end the job (the driver killed, S3 gone), a job that ended without
        finishing is submitted again under the same run name, as a user would; always False, so the
        wait goes on."""
        status = cluster.client().get_job_status(jobs[-1])
        if status.is_terminal():
            if str(status).endswith("SUCCEEDED") or not RESUBMIT & set(chosen[:len(injected)]):
                raise SeqlabError(f"job {jobs[-1]} ended {status} before fault {len(injected) + 1} of {fault!r}:\n"
                                  f"{cluster.logs(jobs[-1])[-3000:]}")
            jobs.append(cluster.submit(train_command(name, storage_uri, epochs)))
        return False

    for after, one in enumerate(chosen, start=1):
        meta = _into_next_epoch(run_uri, after, resubmitted)
        while one == "kill-driver" and _live_driver(cluster, jobs[-1]) is None:
            # the fault before ended the job on its own just now: the run is submitted again, then its driver killed
            cluster.wait(jobs[-1])
            resubmitted()
            wait_for(lambda: _live_driver(cluster, jobs[-1]), 300, f"the driver of job {jobs[-1]}")
        if lost is None:
            lost = time.time() - meta["saved_at"]
        injected.append(_inject(cluster, one, jobs[-1], after + 1, s3, s3_down_s))
    status = cluster.wait(jobs[-1])
    if status != "SUCCEEDED" and RESUBMIT & set(chosen):
        jobs.append(cluster.submit(train_command(name, storage_uri, epochs)))
        status = cluster.wait(jobs[-1])
    logs = "\n".join(cluster.logs(j) for j in jobs)
    final = checkpoints(run_uri).get(epochs, {})
    return Outcome(fault=fault, injected="; ".join(injected) or "nothing", status=status,
                   wall_s=time.monotonic() - t0, jobs=jobs, epochs=len(checkpoints(run_uri)),
                   resumed_from=resumed_epochs(logs), lost_s=lost,
                   epoch_s=final.get("metrics", {}).get("epoch_time_s"), final=final.get("metrics", {}), logs=logs)


def _inject(cluster: LocalCluster, fault: str, job: str, epoch: int, s3: S3Server | None, s3_down_s: float) -> str:
    """Inject one fault into the running job; says what was done."""
    if fault == "kill-worker":
        pid = worker_pids(cluster.logs(job))[1]
        os.kill(pid, signal.SIGKILL)
        return f"SIGKILL to the rank-1 train worker (pid {pid}) in epoch {epoch}"
    if fault == "stop-node":
        # the first worker node without a GPU (the GPU node holds a Serve replica in the cluster tests)
        gone = next(n for n in cluster.nodes if n != "head" and not cluster.gpus.get(n))
        cluster.stop_node(gone)
        cluster.add_worker(cluster.next_name())  # the replacement a spot fleet or the autoscaler brings
        return f"SIGTERM to {gone}'s raylet in epoch {epoch} (ray stop on that node); a new node joins"
    if fault == "kill-driver":
        pid = driver_pid(cluster, job)
        os.kill(pid, signal.SIGKILL)
        return f"SIGKILL to the job's driver (pid {pid}) in epoch {epoch}; the same run submitted again"
    if fault == "restart-s3":
        s3.stop()
        time.sleep(s3_down_s)
        s3.start()
        return f"SeaweedFS killed in epoch {epoch}, restarted {s3_down_s:.0f}s later"
    raise SeqlabError(f"unknown fault {fault!r}")


def search_command(name: str, storage_uri: str, study: str | None, results: str, samples: int, epochs: int = 2,
                   limit: int = 600) -> str:
    return (f"python jobs/tune.py --dataset cfpb --limit {limit} --max-len 64 --embed-dim 16 --batch-size 32 "
            f"--epochs {epochs} --num-workers 1 --num-samples {samples} --max-concurrent 1 --hidden-min 8 "
            f"--hidden-max 32 --search-name {name} --storage-path {storage_uri} --results-dir {results} --verbose"
            + (f" --study-storage {study}" if study else ""))


def trial_folders(storage_uri: str, search: str) -> list[str]:
    """URIs of a search's trial run folders (``<search>/trials/<trial>``), by name."""
    import pyarrow.fs as pa_fs

    fs, path = storage.open_fs(f"{storage_uri}/{search}/trials")
    return sorted(storage.to_uri(i.path, fs) for i in fs.get_file_info(pa_fs.FileSelector(path, allow_not_found=True))
                  if i.type == pa_fs.FileType.Directory)


def tune_results(storage_uri: str, search: str, trial: str) -> list[dict]:
    """Every result Tune recorded for a trial, in order (its ``result.json``, one line a result)."""
    text = storage.read_bytes(f"{storage_uri}/{search}/{trial}/result.json").decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def search_stopped_mid_trial(cluster: LocalCluster, name: str, storage_uri: str, results: str, *, epochs: int = 6,
                             samples: int = 2, limit: int = 2000) -> dict:
    """Stop a search job once its first trial's checkpoint of epoch 2 is whole, submit it again and
    follow it to the end. The trial goes on training while the stop takes effect (seconds), so epochs
    last long enough (``limit`` rows) that it is still mid-way then; ``at_stop`` are its checkpoints
    when the first job had ended."""
    half = 2
    # every checkpoint kept, to compare them with those of the first job
    command = search_command(name, storage_uri, None, results, samples, epochs, limit) + f" --keep-checkpoints {epochs}"
    first = cluster.submit(command)

    def half_way():
        for trial in trial_folders(storage_uri, name):
            folders = {int(u.rsplit("_", 1)[1]): u for u in epoch_folders(trial)}
            # a folder shows up with its first file: stop once the half-way checkpoint is whole
            if half in folders and epochs not in folders and checkpoint_problem(folders[half]) is None:
                return trial
        if cluster.client().get_job_status(first).is_terminal():
            raise SeqlabError(f"search job {first} ended before a trial was half-way:\n{cluster.logs(first)[-3000:]}")
        return None

    trial = wait_for(half_way, 900, f"a trial at epoch {half} of {epochs}", poll=0.2)
    cluster.client().stop_job(first)
    cluster.wait(first)
    stopped_at, at_stop = time.time(), checkpoints(trial)
    second = cluster.submit(command)
    status = cluster.wait(second)
    name_of = trial.rstrip("/").rsplit("/", 1)[-1]
    return {"status": status, "trial": name_of, "stopped_at": stopped_at, "at_stop": at_stop,
            "checkpoints": checkpoints(trial), "results": tune_results(storage_uri, name, name_of),
            "logs": cluster.logs(first) + "\n" + cluster.logs(second)}


def study_name(storage_uri: str, search: str) -> str | None:
    """The Optuna study of a search, as its job wrote it into the search's folder (None before that)."""
    path = f"{storage_uri}/{search}/seqlab_search.json"
    return json.loads(storage.read_bytes(path))["study_name"] if storage.exists(path) else None


def interrupted_search(cluster: LocalCluster, name: str, storage_uri: str, study: str, results: str, *,
                       samples: int = 4, stop_after: int = 2) -> dict:
    """Stop a search job once ``stop_after`` trials are complete, submit it again, follow it to the end."""
    t0 = time.monotonic()
    first = cluster.submit(search_command(name, storage_uri, study, results, samples))

    def complete():
        done = [t for t in study_trials(study, study_name(storage_uri, name) or name) or []
                if t.state.name == "COMPLETE"]
        if len(done) >= stop_after:
            return done
        status = cluster.client().get_job_status(first)
        if status.is_terminal():  # it will never get there: say why now, not after the timeout
            raise SeqlabError(f"search job {first} ended {status.value} with {len(done)} of {stop_after} trials "
                              f"complete:\n{cluster.logs(first)[-3000:]}")
        return None

    done = wait_for(complete, 900, f"{stop_after} complete trials")
    before = {t.number: (t.params, t.value, t.datetime_complete) for t in done}
    cluster.client().stop_job(first)
    cluster.wait(first)
    interrupted_at = time.monotonic() - t0
    second = cluster.submit(search_command(name, storage_uri, study, results, samples))
    status = cluster.wait(second)
    return {"status": status, "jobs": [first, second], "before": before, "study": study_name(storage_uri, name),
            "trials": study_trials(study, study_name(storage_uri, name)) or [],
            "interrupted_at_s": interrupted_at, "wall_s": time.monotonic() - t0,
            "logs": cluster.logs(first) + "\n" + cluster.logs(second)}


def redeploy_under_load(url: str, api_key: str, redeploy, *, model: str = "cfpb", rate_hz: float = 20,
                        settle_s: float = 10, timeout: float = 600) -> dict:
    """Send classify requests at a steady pace while ``redeploy()`` runs (promote a new version,
    write the Serve config, ``serve deploy``), and on until the answers have named one version for
    ``settle_s``; returns what the clients saw: requests, failures, versions in the order seen."""
    import threading

    import requests

    seen: list[tuple[float, int | None, str]] = []  # (time, HTTP status or None, model or error)
    stop = threading.Event()

    def load():
        session = requests.Session()
        while not stop.is_set():
            t = time.monotonic()
            try:
                r = session.post(f"{url}/v1/models/{model}/classify", headers={"X-API-Key": api_key}, timeout=60,
                                 json={"texts": ["My mortgage servicer lost my payment and charged a late fee"]})
                seen.append((t, r.status_code, r.json().get("model") if r.ok else r.text[:300]))
            except requests.RequestException as exc:
                seen.append((t, None, str(exc)[:300]))
            time.sleep(max(0.0, 1 / rate_hz - (time.monotonic() - t)))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    t0 = time.monotonic()
    try:
        wait_for(lambda: any(s == 200 for _, s, _ in seen), 120, "the first answer")
        first = next(m for _, s, m in seen if s == 200)
        started = time.monotonic()
        redeploy()
        deployed = time.monotonic()

        def settled():
            recent = [(s, m) for t, s, m in seen if t > time.monotonic() - settle_s]
            return bool(recent) and time.monotonic() - deployed > settle_s and all(
                s == 200 and m != first for s, m in recent)

        wait_for(settled, timeout, f"answers from a version other than {first}")
    finally:
        stop.set()
        thread.join(timeout=90)
    answers = [m for _, s, m in seen if s == 200]
    order = [m for i, m in enumerate(answers) if i == 0 or m != answers[i - 1]]
    switch = next((t for t, s, m in seen if s == 200 and m != first), None)
    return {"requests": len(seen), "failed": sum(s != 200 for _, s, _ in seen),
            "failures": [m for _, s, m in seen if s != 200][:5], "versions_in_order": order,
            "went_back": len(order) > len(set(order)), "redeploy_s": round(deployed - started, 1),
            "switch_after_s": None if switch is None else round(switch - started, 1),
            "wall_s": round(time.monotonic() - t0, 1)}
