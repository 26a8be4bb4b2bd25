"""A real multi-node Ray cluster (``ray start``, token auth) with real S3 (SeaweedFS), and real faults.

Every job is sent with ``ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml`` and
followed through the Job API. Runs and searches keep their state in S3. These tests run before
the others (conftest), while no other Ray instance is up on the machine.
"""

import os
from pathlib import Path

import pytest

from seqlab import storage
from seqlab.checkpoint import load_model, local_dir
from seqlab_tools import faults
from seqlab_tools.cluster import LocalCluster, S3Server, processes

pytestmark = [pytest.mark.ray, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[2]
RUNS = "s3://seqlab/runs"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())  # this process reads the runs back from S3 too
    yield server
    server.stop()
    for k, v in saved.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def cluster(s3, tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("cluster"), workers=1, env=s3.env())
    with c:
        yield c


@pytest.fixture(scope="module")
def baseline(cluster):
    out = faults.run_fault(cluster, "none", "baseline", RUNS)
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    return out


def test_cluster_runs_with_token_auth(cluster):
    import requests

    assert {n["name"] for n in cluster.alive_nodes()} == {"head", "worker1"}
    # without the token the job server refuses the request
    r = requests.get(f"{cluster.address}/api/jobs/", timeout=10)
    assert r.status_code in (401, 403)


def test_train_job_uses_both_nodes_and_s3(cluster, baseline):
    nodes = {n["node_id"] for n in cluster.alive_nodes()}
    assert faults.worker_nodes(baseline.logs) == nodes  # one train worker on each node
    assert "py_modules_files" in baseline.logs  # the submitted lib/seqlab ran, not an installed copy
    assert baseline.epochs == 3 and baseline.resumed_from == [] and baseline.final["restarts"] == 0
    assert faults.verify_checkpoints(f"{RUNS}/baseline") == {1: "ok", 2: "ok", 3: "ok"}
    with local_dir(f"{RUNS}/baseline/epoch_003") as d:  # served models load straight from S3
        model, tokenizer, meta = load_model(d)
    assert meta["epoch"] == 2 and len(tokenizer) > 10


def _same_metrics(a: dict, b: dict) -> None:
    for k in ("train_loss", "val_loss", "val_macro_f1", "val_accuracy"):
        assert a[k] == pytest.approx(b[k], abs=1e-6), k


def test_killed_worker_resumes_from_the_last_checkpoint(cluster, baseline):
    out = faults.run_fault(cluster, "kill-worker", "kill-worker", RUNS)
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    assert set(out.resumed_from) == {2} and out.final["restarts"] == 1  # restarted at epoch 2 from epoch 1
    assert out.epochs_repeated < 1
    _same_metrics(out.final, baseline.final)  # nothing lost: the same numbers as without the fault


def test_worker_node_leaving_is_replaced(cluster, baseline):
    out = faults.run_fault(cluster, "stop-node", "stop-node", RUNS)
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    assert set(out.resumed_from) == {2} and out.final["restarts"] == 1
    assert {n["name"] for n in cluster.alive_nodes()} == {"head", "worker2"}
    _same_metrics(out.final, baseline.final)


def test_killed_driver_resumes_when_submitted_again(cluster, baseline):
    out = faults.run_fault(cluster, "kill-driver", "kill-driver", RUNS)
    assert len(out.jobs) == 2 and cluster.wait(out.jobs[0]) == "FAILED"
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    assert min(out.resumed_from) >= 2  # the second job went on from a checkpoint, not from scratch
    assert faults.verify_checkpoints(f"{RUNS}/kill-driver") == {1: "ok", 2: "ok", 3: "ok"}
    _same_metrics(out.final, baseline.final)


def test_s3_restart_mid_run_loses_nothing(cluster, s3, baseline):
    out = faults.run_fault(cluster, "restart-s3", "restart-s3", RUNS, s3=s3)
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    checked = faults.verify_checkpoints(f"{RUNS}/restart-s3")
    assert checked[3] == "ok" and out.epochs == 3
    # a checkpoint cut short by the outage is refused, never resumed from
    for epoch in out.resumed_from:
        assert checked.get(epoch - 1) == "ok"
    _same_metrics(out.final, baseline.final)


@pytest.mark.parametrize("backend,samples,stop_after", [("sqlite", 4, 2), ("postgresql", 3, 2)])
def test_interrupted_search_continues_its_optuna_study(cluster, tmp_path, request, backend, samples, stop_after):
    # the embedded default (SQLite) and a real PostgreSQL server (pgserver's binaries, on a Unix socket)
    study = f"sqlite:///{tmp_path}/study.db" if backend == "sqlite" else request.getfixturevalue("postgres")
    name, results = f"search-{backend}", f"s3://seqlab/results-{backend}"
    out = faults.interrupted_search(cluster, name, RUNS, study, results, samples=samples, stop_after=stop_after)
    assert out["status"] == "SUCCEEDED", out["logs"][-3000:]
    complete = [t for t in out["trials"] if t.state.name == "COMPLETE"]
    assert len(complete) == samples and len(out["before"]) >= stop_after
    for number, (params, value, finished) in out["before"].items():  # kept, and not run again
        again = next(t for t in out["trials"] if t.number == number)
        assert (again.params, again.value, again.datetime_complete) == (params, value, finished)
    assert len({tuple(sorted(t.params.items())) for t in complete}) == samples
    assert "resuming search" in out["logs"] and f"Optuna study {name!r} in {backend}" in out["logs"]
    import io
    import json

    import pandas as pd

    table = pd.read_csv(io.BytesIO(storage.read_bytes(f"{results}/cfpb-lstm/search.csv")))
    assert len(table) == samples and (table["status"] == "ok").all()  # the trials before the stop are in it
    assert sorted(zip(table["hidden"], table["dropout"].round(4))) == sorted(
        (t.params["hidden"], round(t.params["dropout"], 4)) for t in complete)
    best = json.loads(storage.read_bytes(f"{results}/cfpb-lstm/best.json"))
    assert best["val_macro_f1"] == table["val_macro_f1"].max()  # the best of all trials, both jobs
    with local_dir(best["checkpoint"]) as d:
        load_model(d)


def test_stopping_another_cluster_leaves_this_one_running(cluster, tmp_path):
    mine = cluster.own_processes()
    names = {Path(processes()[p][1][0]).name for p in mine if p in processes()}
    assert {"gcs_server", "raylet"} <= names and os.getpid() not in mine
    other = LocalCluster(tmp_path, workers=0).start()
    theirs = other.own_processes()
    assert theirs and not theirs & mine
    other.stop()
    alive = processes()
    assert not theirs & alive.keys()  # every process of the other cluster is gone
    assert {Path(alive[p][1][0]).name for p in mine if p in alive} >= {"gcs_server", "raylet"}
    assert len(cluster.alive_nodes()) == len(cluster.nodes)
    assert cluster.client().list_jobs() is not None  # this cluster's job server still answers
    from ray._private.utils import read_ray_address

    # like `ray stop`, it is no longer the machine's current cluster: a later ray.init() starts its own
    assert not (read_ray_address() or "").endswith(f":{other.gcs_port}")
