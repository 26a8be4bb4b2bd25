"""A real multi-node Ray cluster (``ray start``, token auth) with real S3 (SeaweedFS), laid out like
``cluster.yaml`` (a head with no CPUs, worker nodes with their own home folders and addresses, one
declaring a GPU), the README's cluster sequence run as written, and real faults.

Every job is sent with ``ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml`` and
followed through the Job API. Runs and searches keep their state in S3. These tests run before
the others (conftest), while no other Ray instance is up on the machine. Where the stand-in still
differs from the real cluster: see :class:`seqlab_tools.cluster.LocalCluster`.
"""

import os
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab import cli, runs, storage
from seqlab.checkpoint import load_model, local_dir
from seqlab_tools import faults
from seqlab_tools.cluster import LocalCluster, S3Server, processes

pytestmark = [pytest.mark.ray, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[2]
RUNS = "s3://seqlab/runs"
EPOCHS = 2  # each fault hits epoch 2, after the checkpoint of epoch 1 (jobs/reliability.py runs 3)


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
    c = LocalCluster(tmp_path_factory.mktemp("cluster"), workers=2, gpus={"worker2": 1}, env=s3.env())
    with c:
        yield c


@pytest.fixture(scope="module")
def baseline(cluster):
    # one epoch more than the faulted runs: the run with two faults (one per epoch) is compared with it too
    out = faults.run_fault(cluster, "none", "baseline", RUNS, epochs=EPOCHS + 1)
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    return out


def test_cluster_runs_with_token_auth(cluster):
    import requests

    assert {n["name"] for n in cluster.alive_nodes()} == {"head", "worker1", "worker2"}
    # without the token the job server refuses the request
    r = requests.get(f"{cluster.address}/api/jobs/", timeout=10)
    assert r.status_code in (401, 403)


def test_nodes_are_laid_out_like_cluster_yaml(cluster):
    import json
    import subprocess
    import sys

    script = """
import json, os, ray
ray.init(address=os.environ["GCS"], log_to_driver=False)

@ray.remote(num_cpus=0)
def where():
    return os.environ["HOME"], ray.util.get_node_ip_address()

seen = {n: ray.get(where.options(resources={f"node:{n}": 0.001}).remote()) for n in ("head", "worker1", "worker2")}
print(json.dumps({"resources": ray.cluster_resources(), "seen": seen}))
"""
    done = subprocess.run([sys.executable, "-c", script], env={**cluster.env(), "GCS": cluster.gcs_address},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["resources"]["CPU"] == 2 and out["resources"]["GPU"] == 1  # the head runs no work; worker2 has a GPU
    for name, (home, ip) in out["seen"].items():  # each node its own home folder and address
        assert home == str(cluster.home(name)) and ip == cluster.ips[name], (name, home, ip)
    assert "127.0.0.1" not in {ip for _, ip in out["seen"].values()}


def test_train_job_uses_both_worker_nodes_and_s3(cluster, baseline, tmp_path):
    workers = {n["node_id"] for n in cluster.alive_nodes() if n["name"] != "head"}
    assert faults.worker_nodes(baseline.logs) == workers  # one train worker on each worker node
    assert "py_modules_files" in baseline.logs  # the submitted lib/seqlab ran, not an installed copy
    assert baseline.epochs == 3 and baseline.resumed_from == [] and baseline.final["restarts"] == 0
    assert faults.verify_checkpoints(f"{RUNS}/baseline") == {1: "ok", 2: "ok", 3: "ok"}
    with local_dir(f"{RUNS}/baseline/epoch_002") as d:  # served models load straight from S3
        model, tokenizer, meta = load_model(d)
    assert meta["epoch"] == 1 and len(tokenizer) > 10
    # rank 0's TensorBoard event files are copied next to the checkpoints; `seqlab runs` lists and fetches them
    assert runs.event_files(f"{RUNS}/baseline/tensorboard")
    row = next(r for r in runs.listing(RUNS) if r["name"] == "baseline")
    assert row["epochs"] == 3 and row["curves"] >= 1 and "macro_f1" in row["validation"]
    out = cli.run(["runs", "curves", "baseline", "--storage-path", RUNS, "--out", str(tmp_path / "tb")])
    acc = EventAccumulator(out["out"], size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3] == [e.step for e in acc.Scalars("val/macro_f1")]


def _same_metrics(name: str, epochs: int = EPOCHS) -> None:
    """Nothing lost: every epoch's metrics of a faulted run are those of the fault-free run."""
    base, got = faults.checkpoints(f"{RUNS}/baseline"), faults.checkpoints(f"{RUNS}/{name}")
    assert sorted(got) == list(range(1, epochs + 1))
    for epoch in got:
        for k in ("train_loss", "val_loss", "val_macro_f1", "val_accuracy"):
            assert got[epoch]["metrics"][k] == pytest.approx(base[epoch]["metrics"][k], abs=1e-6), (epoch, k)


def test_a_killed_worker_and_a_leaving_node_each_resume_from_the_last_checkpoint(cluster, baseline):
    # two faults in one run (one job start-up instead of two): SIGKILL to a train worker in epoch 2, then
    # a worker node stopped (and a new one joining) in epoch 3; each restart goes on from the epoch before
    out = faults.run_fault(cluster, "kill-worker+stop-node", "two-faults", RUNS, epochs=EPOCHS + 1)
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    assert out.resumed_from == [2, 3] and out.final["restarts"] == 2
    # the time from the last checkpoint to the first fault, in epochs (its upload and this test's polling of S3
    # included: on a busy machine a little over one epoch's training time)
    assert out.epochs_repeated < 1.5
    assert {n["name"] for n in cluster.alive_nodes()} == {"head", "worker2", "worker3"}
    _same_metrics("two-faults", EPOCHS + 1)


def test_an_s3_restart_and_a_killed_driver_each_resume_and_lose_nothing(cluster, s3, baseline):
    # two faults in one run (one job start-up fewer): SeaweedFS stopped for 8 s in epoch 2, then the job's
    # driver killed in epoch 3 and the same run submitted again
    out = faults.run_fault(cluster, "restart-s3+kill-driver", "s3-and-driver", RUNS, epochs=EPOCHS + 1, s3=s3)
    assert out.status == "SUCCEEDED", out.logs[-3000:]
    # the S3 outage is taken by Train's own restarts (--max-failures) or, should it end the job, by one more
    # submission; the killed driver's job fails and its run goes on in the next one
    assert len(out.jobs) in (2, 3) and cluster.wait(out.jobs[-2]) == "FAILED"
    assert 3 in out.resumed_from  # the last submission went on from the checkpoint of epoch 2, not from scratch
    checked = faults.verify_checkpoints(f"{RUNS}/s3-and-driver")
    assert checked == {1: "ok", 2: "ok", 3: "ok"}
    # a checkpoint cut short by the outage is refused, never resumed from
    for epoch in out.resumed_from:
        assert checked.get(epoch - 1) == "ok"
    _same_metrics("s3-and-driver", EPOCHS + 1)


# PostgreSQL, what a cluster keeps a study in: the SQLite default goes through the same Optuna RDBStorage
# and every local search test uses it; jobs/reliability.py interrupts a search on both
@pytest.mark.parametrize("backend,samples,stop_after", [("postgresql", 2, 1)])
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
    # the study is named after what the search is: the name and a digest of its data, model and space
    assert out["study"].startswith(f"{name}-") and len(out["study"]) == len(name) + 9
    assert "resuming search" in out["logs"] and f"Optuna study {out['study']!r} in {backend}" in out["logs"]
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
    table = processes()  # one snapshot: a short-lived child may be gone by a second look
    names = {Path(table[p][1][0]).name for p in mine if p in table}
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


def test_a_search_stopped_mid_trial_goes_on_with_asha_counting_epochs(cluster):
    import io

    import pandas as pd

    # one trial: the point is what happens to the trial that was cut, not ASHA ranking it against others
    out = faults.search_stopped_mid_trial(cluster, "mid-trial", RUNS, "s3://seqlab/results-mid", epochs=6, samples=1)
    assert out["status"] == "SUCCEEDED", out["logs"][-3000:]
    ckpts, before = out["checkpoints"], out["at_stop"]
    assert sorted(ckpts) == [1, 2, 3, 4, 5, 6]
    last = max(before)  # the trial trains on while the stop takes effect: epoch 2, or a little further
    assert 2 <= last < 6, sorted(before)
    # the epochs of the first job were not trained again (the same checkpoints); the rest came from the second
    assert all(ckpts[e]["saved_at"] == before[e]["saved_at"] < out["stopped_at"] for e in before)
    assert all(ckpts[e]["saved_at"] > out["stopped_at"] for e in range(last + 1, 7))
    assert f"resuming from epoch {last + 1}" in out["logs"]
    epochs = [r["epoch"] for r in out["results"]]
    # after the restore the trial reported its earlier epochs again, then the rest: ASHA (whose rungs Tune
    # does not save) saw each epoch at its own rung, as in an uninterrupted search
    assert epochs[-6:] == [1, 2, 3, 4, 5, 6] and epochs[0] == 1
    table = pd.read_csv(io.BytesIO(storage.read_bytes("s3://seqlab/results-mid/cfpb-lstm/search.csv")))
    assert list(table["trial"]) == [out["trial"]]
    row = table.iloc[0]
    assert row["epochs_run"] == 6 and row["best_epoch"] in range(1, 7) and row["status"] == "ok"


# ---- the README's cluster sequence, as a user types it (last: its Serve app holds CPUs the jobs above need) ----

@pytest.fixture(scope="module")
def sequence(cluster, s3, tmp_path_factory):
    """The README's commands as written (smaller data appended, readme.STAND_IN), from a user's machine."""
    import requests

    from seqlab_tools import readme

    out = readme.run_sequence(cluster, s3, tmp_path_factory.mktemp("user") / "home")
    yield {**out, "requests": requests}
    readme.stop_serving(out["env"])


def test_the_readme_cluster_sequence_runs_as_written(sequence):
    assert [" ".join(c.split()[:3]) for c in sequence["commands"]] == [
        "ray job submit", "ray job submit", "seqlab registry promote", "seqlab registry serve-config",
        "serve deploy serve.yaml"]
    requests, url = sequence["requests"], sequence["url"]
    body = {"texts": ["A debt collector keeps calling me at work"]}
    assert requests.post(f"{url}/v1/models/cfpb/classify", json=body, timeout=60).status_code == 401
    r = requests.post(f"{url}/v1/models/cfpb/classify", json=body, headers={"X-API-Key": sequence["key"]}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "cfpb:1"  # the version is pinned and named in every answer


def test_replicas_are_placed_as_seqlab_serve_places_them(cluster, sequence):
    requests, url = sequence["requests"], sequence["url"]
    info = requests.get(f"{url}/v1/models/cfpb", headers={"X-API-Key": sequence["key"]}, timeout=60).json()
    nodes = {n["node_id"]: n["name"] for n in cluster.alive_nodes()}
    # the cluster has a GPU, so the replica asked for one and went to the node that has it; with no
    # CUDA on this machine it computes on its CPU (on a GPU node it would use the GPU Ray gave it)
    assert nodes[info["node_id"]] == "worker2" and info["gpu_ids"] == ["0"] and info["device"] == "cpu"
    assert info["source"] == "cfpb:1" and info["version"] == 1


def test_promote_and_redeploy_under_load_switches_versions_without_a_failure(sequence):
    from seqlab_tools import faults, readme

    commands, env = sequence["commands"], sequence["env"]
    out = faults.redeploy_under_load(sequence["url"], sequence["key"],
                                     lambda: [readme.run(c, env=env) for c in commands[2:]])  # promote, config, deploy
    assert out["failed"] == 0, out["failures"]
    assert out["versions_in_order"] == ["cfpb:1", "cfpb:2"] and not out["went_back"], out
    assert out["requests"] > 50
