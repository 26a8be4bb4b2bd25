"""Real Ray: the train job with 2 gloo workers, resume, a small search, Serve over HTTP, the demo."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests
from conftest import free_port

from seqlab.cli import run

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--limit", "240", "--max-len", "64", "--embed-dim", "16", "--batch-size", "32"]


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def trained(ray_local, storage):
    out = run(["train", *SMALL, "--hidden", "16", "--epochs", "1", "--num-workers", "2", "--name", "it-train",
               "--storage-path", str(storage)])
    return out


def test_train_job_writes_a_full_checkpoint(trained, storage):
    ckpt = Path(trained["checkpoint"])
    assert ckpt == storage / "it-train" / "epoch_001"
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "optimizer.pt", "seqlab_tokenizer.json", "meta.json"}
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["epoch"] == 0 and len(meta["labels"]) == 8
    assert meta["data"]["name"] == "cfpb" and meta["data"]["limit"] == 240
    for key in ("val_loss", "val_accuracy", "val_macro_f1", "train_samples_per_s"):
        assert key in trained["metrics"]
    assert 0 <= trained["test"]["macro_f1"] <= 1 and trained["test"]["n"] == 240


def test_second_run_with_the_same_name_resumes(trained, storage):
    first = storage / "it-train" / "epoch_001" / "model.safetensors"
    before = first.stat().st_mtime_ns
    out = run(["train", *SMALL, "--hidden", "16", "--epochs", "2", "--num-workers", "2", "--name", "it-train",
               "--storage-path", str(storage)])
    assert out["metrics"]["epoch"] == 2
    assert first.stat().st_mtime_ns == before  # epoch 1 was not trained again
    meta = json.loads((storage / "it-train" / "epoch_002" / "meta.json").read_text())
    assert meta["epoch"] == 1


@pytest.fixture(scope="module")
def searched(ray_local, storage, tmp_path_factory):
    """A search whose space is given as data: search.space in YAML names a model option and a train field
    (the width/dropout default space: the text, entity and molecule searches and the demo)."""
    results = tmp_path_factory.mktemp("results")
    cfg = results / "search.yaml"
    cfg.write_text("model: {hidden: 16}\n"
                   "search: {space: {embed_dim: 'choice[8, 24]', lr: 'loguniform[1e-3, 1e-2]'}, num_samples: 2}\n")
    out = run(["tune", "--config", str(cfg), *SMALL, "--epochs", "2", "--max-concurrent", "2", "--num-workers", "1",
               "--search-name", "it-search", "--storage-path", str(storage), "--results-dir", str(results)])
    return out, results / "cfpb-lstm"


def test_a_search_over_fields_given_as_data_names_a_best_checkpoint(searched):
    out, folder = searched
    table = pd.read_csv(folder / "search.csv")
    assert len(table) == 2 and set(table["status"]) == {"ok"}
    assert list(table.columns[1:3]) == ["embed_dim", "lr"]
    assert table["trial"].str.fullmatch(r"embed_dim(8|24)-lr\d\.\de-0\d-t\d+").all()
    for row in table.itertuples():  # each trial trained with its values
        meta = json.loads((Path(row.checkpoint) / "meta.json").read_text())
        assert meta["model"]["kwargs"]["embed_dim"] == row.embed_dim and meta["model"]["kwargs"]["hidden"] == 16
        assert meta["train"]["lr"] == pytest.approx(row.lr) and 1e-3 <= row.lr <= 1e-2
    best = json.loads((folder / "best.json").read_text())
    assert best["space"] == {"embed_dim": "choice[8, 24]", "lr": "loguniform[0.001, 0.01]"}
    assert best["val_macro_f1"] == table["val_macro_f1"].max() and out["best"]["trial"] == best["trial"]
    assert (Path(best["checkpoint"]) / "model.safetensors").exists()
    assert (folder / "search.png").stat().st_size > 10_000
    report = (folder / "test_metrics.md").read_text()
    for needle in ("Command: `seqlab tune", "Commit:", "Hardware:", "sha256"):
        assert needle in report


def test_runs_and_searches_are_in_mlflow_next_to_them(trained, searched, storage):
    """No --tracking-uri: the runs' folder holds an MLflow SQLite store, read here with MLflow's client."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    runs = {r.info.run_name: r for r in c.search_runs([c.get_experiment_by_name("seqlab").experiment_id])}
    train = runs["it-train"]
    assert train.info.status == "FINISHED" and train.data.params["model"] == "lstm"
    assert train.data.params["model.hidden"] == "16" and train.data.params["data.name"] == "cfpb"
    assert [m.step for m in c.get_metric_history(train.info.run_id, "val_macro_f1")][0] == 1
    assert train.data.tags["seqlab.best_checkpoint"].startswith(str(storage / "it-train" / "epoch_"))
    parent = runs["it-search"]
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    table = pd.read_csv(searched[1] / "search.csv")
    assert sorted(r.info.run_name for r in children) == sorted(table["trial"])  # one child per trial
    for child in children:  # each with its curve, epoch by epoch, as far as ASHA let it run
        row = table[table["trial"] == child.info.run_name].iloc[0]
        steps = [m.step for m in c.get_metric_history(child.info.run_id, "val_macro_f1")]
        assert steps == list(range(1, row["epochs_run"] + 1))
        assert child.info.status in ("FINISHED", "KILLED")
    best = json.loads((searched[1] / "best.json").read_text())
    assert parent.info.status == "FINISHED" and parent.data.tags["seqlab.best_trial"] == best["trial"]


def test_serve_answers_real_http(searched):
    from seqlab.serve.app import start
    from seqlab.serve.options import ServeOptions
    from seqlab.serve.sources import resolve_checkpoint

    url = start(resolve_checkpoint(str(searched[1])), ServeOptions(port=free_port(), max_texts=4, max_chars=500,
                                                                     max_batch_size=8))
    health = requests.get(f"{url}/healthz", timeout=30).json()
    assert health["status"] == "ok" and len(health["labels"]) == 8

    r = requests.post(f"{url}/v1/classify", json={"texts": ["my mortgage payment was lost", "debt collector"]},
                      timeout=60)
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert len(preds) == 2 and preds[0]["label"] in health["labels"]
    assert abs(sum(preds[0]["probabilities"].values()) - 1) < 1e-3

    bad = [
        ({"json": {"texts": []}}, 422, "texts is empty"),
        ({"json": {"texts": [1]}}, 422, "texts[0]: Input should be a valid string"),
        ({"json": {"texts": ["fine", ""]}}, 422, "texts[1] is empty"),
        ({"json": {"texts": ["x" * 501]}}, 413, "at most 500"),
        ({"json": {"texts": ["a"] * 5}}, 413, "at most 4"),
        ({"json": {"text": ["a"]}}, 422, "missing field 'texts'"),
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 422, "not valid JSON"),
        ({"data": "texts=a"}, 422, "Content-Type: application/json"),
    ]
    for kwargs, status, message in bad:
        r = requests.post(f"{url}/v1/classify", timeout=30, **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        assert message in r.json()["error"], (kwargs, r.text)
    assert "/v1/classify" in requests.get(f"{url}/openapi.json", timeout=30).json()["paths"]
    from ray import serve

    serve.shutdown()  # the proxy too: the demo test starts Serve on another port


def test_promote_serves_the_searchs_best_trial_in_one_command(searched, tmp_path):
    from ray import serve

    try:
        out = run(["registry", "promote", str(searched[1]), "--name", "it-best", "--serve", "--no-block",
                   "--registry", str(tmp_path / "registry"), "--port", str(free_port()), "--max-texts", "4"])
        best = json.loads((searched[1] / "best.json").read_text())
        assert (out["card"]["version"], out["card"]["promotion"]["trial"]) == (1, best["trial"])
        r = requests.post(f"{out['url']}/v1/models/it-best/classify", json={"texts": ["the debt collector called"]},
                          timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["label"] in out["card"]["labels"]
        models = requests.get(f"{out['url']}/v1/models", timeout=30).json()["models"]
        assert [(m["key"], m["name"], m["version"]) for m in models] == [("it-best:1", "it-best", 1)]
    finally:
        serve.shutdown()  # the proxy too: the demo test starts Serve on another port


def test_demo_runs_the_whole_path(ray_local, tmp_path):
    """``make demo`` runs ``python jobs/pipeline.py``: here in a process of its own, as a user starts it. It joins
    the session's Ray instance through RAY_ADDRESS (as a job sent with ``ray job submit`` does) rather than
    starting a second instance on the same two cores, which is the one way it differs from ``make demo``."""
    env = dict(os.environ, RAY_ADDRESS=ray_local.get_runtime_context().gcs_address)
    done = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "pipeline.py"), *SMALL, "--epochs", "1", "--num-samples", "2",
         "--hidden-min", "8", "--hidden-max", "16", "--num-workers", "1", "--storage-path", str(tmp_path / "runs"),
         "--results-dir", str(tmp_path / "results"), "--port", str(free_port()),
         "--registry", str(tmp_path / "registry")], capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    answers = [line for line in done.stdout.splitlines() if "(p=" in line and "<- " in line]
    assert len(answers) == 3, done.stdout[-3000:]
    assert "a bad request gets HTTP 422: texts is empty" in done.stdout
    assert re.search(r"test macro-F1 of the baseline \(TF-IDF \+ linear SVM\) 0\.\d{4}, the train run 0\.\d{4}, "
                     r"the tuned LSTM 0\.\d{4}", done.stdout), done.stdout[-3000:]
    assert (tmp_path / "results" / "cfpb-lstm" / "test_metrics.md").exists()
    # quiet by default: the story fits on a screen; Ray's own output (Tune's tables, the workers') is in the log
    shown = done.stdout.splitlines() + done.stderr.splitlines()
    assert len(shown) <= 50 and not any("Trial status" in line or " pid=" in line for line in shown), done.stdout
    assert "[seqlab] trial 2/2 " in done.stdout and "[seqlab] epoch 1/1: train_loss " in done.stdout
    log = done.stdout.splitlines()[-1].removeprefix("[seqlab] full log: ")
    assert log.startswith(str(tmp_path / "runs")) and "/logs/pipeline-" in log
    logged = Path(log).read_text()
    assert "Trial status" in logged and "RayTrainWorker pid=" in logged
