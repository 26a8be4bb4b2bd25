"""TensorBoard curves on every storage (the loop's writer, local and on a real S3 server) and ``seqlab runs``
(listing, copying and plotting a run's curves) on runs written as training writes them; no Ray."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import tiny_checkpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab import runs, storage
from seqlab.errors import SeqlabError
from seqlab.report import tensorboard_history
from seqlab.train.curves import Curves, upload_events


def log_epoch(c: Curves, metrics: dict, epoch: int) -> None:
    """What the training loop does each epoch: write the scalars, then (after the checkpoint) copy them."""
    c.log(metrics, epoch)
    c.upload()


def metrics(epoch: int, f1: float | None = None) -> dict:
    """An epoch's metrics as the loop reports them (``epoch`` from 1)."""
    f1 = 0.3 + 0.1 * epoch if f1 is None else f1
    return {"epoch": epoch, "train_loss": 2.0 / epoch, "val_loss": 2.2 / epoch, "val_macro_f1": f1,
            "val_accuracy": f1 + 0.05, "train_samples_per_s": 100.0, "epoch_time_s": 1.5, "restarts": 0,
            "checkpoint_dir": f"/x/epoch_{epoch:03d}"}


def scalars(folder, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a tag as TensorBoard reads the folder (every event file, in order)."""
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, round(e.value, 4)) for e in acc.Scalars(tag)]


def write_run(root: str, name: str, work, epochs: int, planned: int = 5, curves: bool = True) -> None:
    """A run as training leaves it under ``root`` (a folder or s3://): checkpoints ``epoch_001``... (the
    newest's meta.json says how far it got) and, with ``curves``, the loop's event files."""
    run = work / name
    first = tiny_checkpoint(run / "epoch_001")
    for epoch in range(1, epochs + 1):
        folder = run / f"epoch_{epoch:03d}"
        if epoch > 1:
            shutil.copytree(first, folder)
        meta = json.loads((folder / "meta.json").read_text())
        meta.update(epoch=epoch - 1, metrics=metrics(epoch), train={"epochs": planned})
        (folder / "meta.json").write_text(json.dumps(meta))
    storage.upload_dir(run, storage.join(root, name))
    if curves:
        c = Curves(storage.join(root, name, "tensorboard"))
        for epoch in range(epochs):
            log_epoch(c, metrics(epoch + 1), epoch)
        c.close()


@pytest.fixture(scope="module", params=["local", "s3"])
def root(request, tmp_path_factory):
    """Runs in a local folder and on S3: alpha (3 of 5 epochs, curves), beta (1 epoch, no curves), and
    what is not a run: a search's folder, a file, an empty folder."""
    work = tmp_path_factory.mktemp("work")
    if request.param == "s3":
        request.getfixturevalue("s3")
        root = "s3://seqlab/runs-listing"
    else:
        root = str(tmp_path_factory.mktemp("runs"))
        (work / "empty").mkdir()
        storage.upload_dir(work / "empty", storage.join(root, "empty"))
    write_run(root, "alpha", work, epochs=3)
    write_run(root, "beta", work, epochs=1, curves=False)
    storage.write_bytes(storage.join(root, "search-x", "trials", "t1", "result.json"), b"{}")
    storage.write_bytes(storage.join(root, "notes.txt"), b"not a run")
    return root


def test_local_curves_are_written_in_place(tmp_path):
    c = Curves(str(tmp_path / "tb"))
    log_epoch(c, metrics(1), 0)
    assert c.local == str(tmp_path / "tb") and scalars(tmp_path / "tb", "val/macro_f1") == [(1, 0.4)]
    log_epoch(c, metrics(2), 1)
    c.close()
    assert scalars(tmp_path / "tb", "train/loss") == [(1, 2.0), (2, 1.0)]
    assert "checkpoint_dir" not in tensorboard_history(tmp_path / "tb")  # numbers only


def test_s3_curves_are_copied_every_epoch_and_a_resume_adds_a_file(s3, tmp_path):
    uri = "s3://seqlab/runs-copy/r/tensorboard"
    c = Curves(uri)
    log_epoch(c, metrics(1), 0)
    assert len(runs.event_files(uri)) == 1  # there after the first epoch, not only at the end
    storage.download_dir(uri, tmp_path / "after1")
    assert scalars(tmp_path / "after1", "val/macro_f1") == [(1, 0.4)]
    log_epoch(c, metrics(2), 1)
    log_epoch(c, metrics(3), 2)  # lost with the node: the run resumes from epoch 2's checkpoint
    local = c.local
    c.close()
    assert not os.path.exists(local)  # the temporary folder is gone
    first = runs.event_files(uri)
    storage.download_dir(uri, tmp_path / "after3")
    assert scalars(tmp_path / "after3", "train/loss") == [(1, 2.0), (2, 1.0), (3, 0.6667)]
    # resumed on another node: a new writer, a new event file next to the old one (which stays as it was)
    c = Curves(uri)
    log_epoch(c, metrics(3, f1=0.9), 2)
    log_epoch(c, metrics(4), 3)
    c.close()
    files = runs.event_files(uri)
    assert len(files) == 2 and first[0] in files
    storage.download_dir(uri, tmp_path / "resumed")
    assert scalars(tmp_path / "resumed", "val/macro_f1") == [(1, 0.4), (2, 0.5), (3, 0.9), (4, 0.7)]
    h = tensorboard_history(tmp_path / "resumed")
    assert list(h.index) == [1, 2, 3, 4] and h.loc[3, "val/macro_f1"] == pytest.approx(0.9)


def test_upload_events_replaces_the_objects(s3, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "events.out.tfevents.1.host.1.0").write_bytes(b"one")
    uri = "s3://seqlab/runs-upload/tb"
    assert upload_events(tmp_path / "a", uri) == [f"{uri}/events.out.tfevents.1.host.1.0"]
    (tmp_path / "a" / "events.out.tfevents.1.host.1.0").write_bytes(b"one two")
    upload_events(tmp_path / "a", uri)
    assert storage.read_bytes(f"{uri}/events.out.tfevents.1.host.1.0") == b"one two"


def test_a_failed_upload_warns_once_and_the_next_epoch_retries(s3, tmp_path, monkeypatch, capsys):
    uri = "s3://seqlab/runs-outage/r/tensorboard"
    c = Curves(uri)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the store is down
    monkeypatch.setenv("SEQLAB_S3_RETRIES", "1")
    monkeypatch.setenv("SEQLAB_S3_TIMEOUT_S", "1")
    log_epoch(c, metrics(1), 0)  # no exception: training goes on
    log_epoch(c, metrics(2), 1)
    out = capsys.readouterr().out
    assert out.count("warning: could not copy the TensorBoard event files") == 1 and uri in out
    assert out.count("\n") == 1
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)  # back
    log_epoch(c, metrics(3), 2)
    c.close()
    storage.download_dir(uri, tmp_path / "tb")
    assert [s for s, _ in scalars(tmp_path / "tb", "train/loss")] == [1, 2, 3]  # the epochs missed came along


def test_listing(root):
    rows = runs.listing(root)
    assert [r["name"] for r in rows] == ["alpha", "beta"] == runs.run_names(root)
    alpha, beta = rows
    assert (alpha["task"], alpha["model"], alpha["epochs"], alpha["planned"], alpha["curves"]) == (
        "classify", "lstm", 3, 5, 1)
    assert alpha["validation"] == {"macro_f1": pytest.approx(0.6), "loss": pytest.approx(2.2 / 3)}
    assert alpha["uri"] == storage.join(root, "alpha") and (beta["epochs"], beta["curves"]) == (1, 0)
    lines = runs.table(rows).splitlines()
    assert lines[0].split() == ["NAME", "TASK", "MODEL", "EPOCHS", "VALIDATION", "(LAST", "EPOCH)", "CURVES"]
    assert lines[1].split() == ["alpha", "classify", "lstm", "3/5", "macro_f1", "0.6000", "loss", "0.7333", "yes",
                                "(1", "file)"]
    assert lines[2].split()[-1] == "no" and lines[2].split()[3] == "1/5"


def test_curves_are_copied_and_plotted(root, tmp_path):
    files = runs.download_curves(root, "alpha", tmp_path / "alpha-tb")
    assert len(files) == 1 and files[0].parent == tmp_path / "alpha-tb" and files[0].exists()
    assert scalars(tmp_path / "alpha-tb", "val/macro_f1") == [(1, 0.4), (2, 0.5), (3, 0.6)]
    drawn = runs.plot_curves(tmp_path / "alpha-tb", tmp_path / "c.png", "alpha")
    assert drawn == ["loss", "accuracy", "macro_f1"]
    png = (tmp_path / "c.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    runs.download_curves(root, "alpha", tmp_path / "alpha-tb")  # again into the same folder: refreshed
    assert len(list((tmp_path / "alpha-tb").iterdir())) == 1


def test_errors_are_one_line(root, tmp_path):
    with pytest.raises(SeqlabError, match=r"^no run named 'gamma' under .*; runs there: alpha, beta$"):
        runs.download_curves(root, "gamma", tmp_path / "x")
    with pytest.raises(SeqlabError, match=r"^no run named '\.\./alpha'"):
        runs.download_curves(root, "../alpha", tmp_path / "x")
    with pytest.raises(SeqlabError, match=r"^run 'beta' has no TensorBoard curves \(no event files in .*beta/tensorb"):
        runs.download_curves(root, "beta", tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(SeqlabError, match="exists and is not a folder"):
        runs.download_curves(root, "alpha", tmp_path / "file")
    with pytest.raises(SeqlabError, match="there are no runs there"):
        runs.download_curves(str(tmp_path / "none"), "alpha", tmp_path / "x")
    assert runs.listing(str(tmp_path / "none")) == []


def test_unreachable_storage_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SEQLAB_S3_RETRIES", "1")
    monkeypatch.setenv("SEQLAB_S3_TIMEOUT_S", "1")
    with pytest.raises(SeqlabError, match=r"^cannot list s3://seqlab/runs: .*check the path, AWS_ENDPOINT_URL"):
        runs.listing("s3://seqlab/runs")


def seqlab(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlab.cli", *args], check=False, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})}, cwd=cwd)


def test_seqlab_runs_command(s3, tmp_path):
    root = "s3://seqlab/runs-cli"
    write_run(root, "alpha", tmp_path / "work", epochs=2)
    out = seqlab("runs", "--storage-path", root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"[seqlab] 1 run in {root}" and lines[1].startswith("NAME") and lines[2].startswith("alpha ")
    out = seqlab("runs", "curves", "alpha", "--storage-path", root, "--out", str(tmp_path / "tb"), "--plot",
                 str(tmp_path / "c.png"))
    assert out.returncode == 0, out.stderr
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in out.stdout and (tmp_path / "c.png").stat().st_size > 5000
    assert [s for s, _ in scalars(tmp_path / "tb", "val/loss")] == [1, 2]
    out = seqlab("runs", "curves", "gamma", "--storage-path", root)
    assert out.returncode == 2
    assert out.stderr == f"seqlab: error: no run named 'gamma' under {root}; runs there: alpha\n"
    # the default storage is seqlab train's: $SEQLAB_STORAGE; the default --out is ./NAME-tensorboard
    local = tmp_path / "local-runs"
    write_run(str(local), "delta", tmp_path / "work2", epochs=1)
    out = seqlab("runs", env={"SEQLAB_STORAGE": str(local)})
    assert out.returncode == 0 and "delta " in out.stdout, out.stderr
    done = seqlab("runs", "curves", "delta", env={"SEQLAB_STORAGE": str(local)}, cwd=tmp_path)
    assert done.returncode == 0 and len(list((tmp_path / "delta-tensorboard").iterdir())) == 1, done.stderr
