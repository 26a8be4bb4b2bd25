"""MLflow tracking against real stores: a SQLite file, and a real tracking server (``mlflow server``,
started here) spoken to over its REST API, both read back with MLflow's own client. (The train and
tune jobs log through the same code on Ray: tests/jobs/test_ray_integration.py.)"""

import json
from pathlib import Path

import pytest

from seqlab.config import ModelConfig, TrainConfig
from seqlab.errors import SeqlabError
from seqlab.train import tracking
from seqlab.train.loop import RunSpec

CARD = {"name": "tiny", "sha256": "ab" * 32, "licence": "CC0"}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    from seqlab_tools.cluster import MlflowServer

    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture(params=["sqlite", "server"])
def store(request, tmp_path):
    """``(tracking URI or None for the default SQLite next to the runs, storage folder)``."""
    uri = request.getfixturevalue("mlflow_server").url if request.param == "server" else None
    return uri, str(tmp_path)


def spec(run_uri: str, name: str = "run-a") -> RunSpec:
    return RunSpec(name=name, run_uri=run_uri, signature="s", task="classify", labels=["a", "b"], tokenizer={},
                   vocab_size=10, card=CARD, max_len=20, model=ModelConfig(model="lstm"),
                   model_kwargs={"hidden": 8, "dropout": 0.1}, train=TrainConfig(name=name, lr=1e-3), data=None)


def epoch(i: int) -> dict:
    return {"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_loss": 2.0 - 0.1 * i, "val_macro_f1": 0.5 + 0.1 * i,
            "checkpoint_dir": f"/runs/run-a/epoch_{i + 1:03d}"}


def test_runs_in_a_local_folder_are_tracked_in_sqlite_next_to_them_and_s3_runs_on_request(tmp_path, capsys):
    t = tracking.for_runs(None, "seqlab", str(tmp_path / "runs"))
    assert t.uri == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert t.artifacts == str(tmp_path / "runs" / "mlflow-artifacts")
    assert tracking.for_runs("none", "seqlab", str(tmp_path)) is None
    assert tracking.for_runs(None, "seqlab", "s3://bucket/runs") is None
    assert "--tracking-uri" in capsys.readouterr().out  # says how, rather than nothing
    on_s3 = tracking.for_runs("sqlite:////tmp/x.db", "e", "s3://bucket/runs")
    assert on_s3.uri == "sqlite:////tmp/x.db" and on_s3.artifacts == "s3://bucket/runs/mlflow-artifacts"


def test_a_run_logs_params_curves_card_and_best_checkpoint_and_a_resumed_run_continues_it(store, tmp_path):
    t = tracking.for_runs(*store[:1], "exp", store[1])
    s = spec(str(tmp_path / "run-a"))
    first = tracking.RunTracker(t, s)
    for i in range(2):
        first.log(epoch(i), i, f"{s.run_uri}/epoch_{i + 1:03d}")
    assert first.flush()
    first.close(finished=False)  # the job was stopped after epoch 2
    again = tracking.RunTracker(t, s)  # started again under its name: the same MLflow run goes on
    again.log(epoch(2), 2, None)  # not better than epoch 2
    again.close(finished=True)
    assert not first.warned and not again.warned

    c = tracking.client(t.uri)
    runs = c.search_runs([c.get_experiment_by_name("exp").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "run-a" and run.info.status == "FINISHED"
    assert run.data.params["model"] == "lstm" and run.data.params["model.hidden"] == "8"
    assert run.data.params["train.lr"] == "0.001" and run.data.params["data.sha256"] == CARD["sha256"]
    assert [(m.step, m.value) for m in c.get_metric_history(run.info.run_id, "val_macro_f1")] == \
        [(1, 0.5), (2, 0.6), (3, pytest.approx(0.7))]
    assert run.data.tags[tracking.BEST_TAG] == f"{s.run_uri}/epoch_002"
    assert run.data.tags[tracking.RUN_TAG] == s.run_uri
    assert "checkpoint_dir" not in run.data.metrics  # a path is a tag, not a number
    card = c.download_artifacts(run.info.run_id, "data_card.json", str(tmp_path))
    assert json.loads(Path(card).read_text()) == CARD
    if t.uri.startswith("sqlite:"):  # beside the runs; a server keeps them where it was told
        assert (tmp_path / "mlflow-artifacts" / run.info.run_id / "artifacts" / "data_card.json").exists()


def test_a_search_is_a_parent_run_with_a_child_per_trial(store, tmp_path):
    t = tracking.for_runs(*store[:1], "seqlab", store[1])
    parent = tracking.start_search(t, str(tmp_path / "search"), "search", {"space.hidden": "lograndint[8, 64]"})
    assert tracking.start_search(t, str(tmp_path / "search"), "search", {}).parent_run_id == parent.parent_run_id
    for name, epochs in (("trial-1", 3), ("trial-2", 1)):  # trial-2: stopped by ASHA after one epoch
        tr = tracking.RunTracker(parent, spec(str(tmp_path / "search" / "trials" / name), name))
        for i in range(epochs):
            tr.log(epoch(i), i, None)
        tr.flush()
        if epochs == 3:
            tr.close(finished=True)
    tracking.end_search(parent, {"trial": "trial-1", "val_macro_f1": 0.7})

    c = tracking.client(t.uri)
    runs = {r.info.run_name: r for r in c.search_runs([parent.experiment_id])}
    assert set(runs) == {"search", "trial-1", "trial-2"}
    assert {runs[n].data.tags["mlflow.parentRunId"] for n in ("trial-1", "trial-2")} == {parent.parent_run_id}
    assert runs["search"].info.status == "FINISHED" and runs["search"].data.tags["seqlab.best_trial"] == "trial-1"
    assert runs["trial-1"].info.status == "FINISHED" and runs["trial-2"].info.status == "KILLED"
    assert runs["search"].data.params["space.hidden"] == "lograndint[8, 64]"


def test_a_store_that_fails_warns_once_and_training_goes_on(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")  # the store cannot be made under it
    t = tracking.Tracking(f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}", "seqlab")
    tr = tracking.RunTracker(t, spec(str(tmp_path / "run-a")))
    for i in range(3):
        tr.log(epoch(i), i, None)
    assert tr.flush(timeout=60)
    tr.close(finished=True)
    out = capsys.readouterr().out
    assert tr.warned and out.count("MLflow tracking at") == 1 and "training goes on" in out


def test_an_unreachable_tracking_server_is_one_line_before_anything_starts(tmp_path):
    from seqlab_tools.cluster import free_port

    with pytest.raises(SeqlabError, match=r"no MLflow tracking server answers at http://127\.0\.0\.1:\d+"):
        tracking.for_runs(f"http://127.0.0.1:{free_port()}", "seqlab", str(tmp_path))
