"""Storage against a real S3-compatible server (SeaweedFS, the ``s3`` fixture of conftest), checkpoint checksums,
study storage URLs."""

import json

import pytest
import torch

from seqlab import storage
from seqlab.checkpoint import load_model, local_dir, save, verify
from seqlab.config import SearchConfig
from seqlab.errors import SeqlabError
from seqlab.models import build_model
from seqlab.tune.study import redact


def _checkpoint(path):
    model = build_model("lstm", vocab_size=20, num_classes=3, hidden=8, embed_dim=4)
    tok = {"kind": "word", "vocab": ["<pad>", "<unk>", *[f"w{i}" for i in range(18)]], "max_len": 16}
    meta = {"task": "classify", "model": {"name": "lstm", "kwargs": {"hidden": 8, "embed_dim": 4}},
            "labels": ["a", "b", "c"], "vocab_size": 20, "epoch": 0}
    save(path, model=model, optimizer=torch.optim.AdamW(model.parameters()), meta=meta, tokenizer=tok)
    return model


def test_settings_come_from_the_aws_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SEQLAB_S3_RETRIES", "3")
    monkeypatch.setenv("SEQLAB_S3_TIMEOUT_S", "4")
    s = storage.s3_settings()
    assert (s["endpoint"], s["retries"], s["timeout_s"]) == ("http://127.0.0.1:9", 3, 4.0)
    fs, path = storage.open_fs("s3://bucket/a/b/")
    assert path == "bucket/a/b" and "127.0.0.1:9" in repr(fs.endpoint_override if hasattr(fs, "endpoint_override")
                                                            else fs.__reduce__())
    assert storage.to_uri("bucket/a", fs) == "s3://bucket/a" and storage.to_uri("/x", None) == "/x"


def test_unreachable_store_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SEQLAB_S3_RETRIES", "1")
    monkeypatch.setenv("SEQLAB_S3_TIMEOUT_S", "1")
    with pytest.raises(SeqlabError, match="cannot reach s3://bucket/ckpt"):
        with local_dir("s3://bucket/ckpt"):
            pass


def test_checkpoint_round_trips_through_s3(s3, tmp_path):
    _checkpoint(tmp_path / "ckpt")
    storage.upload_dir(tmp_path / "ckpt", "s3://seqlab/models/one")
    with local_dir("s3://seqlab/models/one") as d:
        model, tokenizer, meta = load_model(d)
    assert meta["files"]["model.safetensors"] == verify(tmp_path / "ckpt")["files"]["model.safetensors"]
    with pytest.raises(SeqlabError, match="does not exist"):
        with local_dir("s3://seqlab/models/none"):
            pass


def test_half_written_checkpoint_is_refused(s3, tmp_path):
    _checkpoint(tmp_path / "ckpt")
    # an upload cut short: the weights object is truncated, meta.json made it
    data = (tmp_path / "ckpt" / "model.safetensors").read_bytes()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(data[: len(data) // 2])
    storage.upload_dir(tmp_path / "ckpt", "s3://seqlab/models/half")
    with local_dir("s3://seqlab/models/half") as d:
        with pytest.raises(SeqlabError, match="half-written: model.safetensors"):
            load_model(d)
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(data)
    assert verify(tmp_path / "ckpt")["epoch"] == 0
    (tmp_path / "ckpt" / "seqlab_tokenizer.json").unlink()
    with pytest.raises(SeqlabError, match="seqlab_tokenizer.json is missing"):
        verify(tmp_path / "ckpt")


def test_multipart_upload_and_staged_results(s3, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (12 * 1024 * 1024))  # above boto3's 8 MB multipart threshold
    storage.s3_client().upload_file(str(big), "seqlab", "blobs/big.bin")
    assert storage.s3_client().head_object(Bucket="seqlab", Key="blobs/big.bin")["ContentLength"] == 12 * 1024 * 1024
    with storage.staged_dir("s3://seqlab/results/x") as out:
        (out / "best.json").write_text(json.dumps({"checkpoint": "s3://seqlab/models/one"}))
    assert json.loads(storage.read_bytes("s3://seqlab/results/x/best.json"))["checkpoint"] == "s3://seqlab/models/one"
    storage.write_bytes("s3://seqlab/results/x/note.txt", b"hi")
    assert storage.exists("s3://seqlab/results/x/note.txt") and not storage.exists("s3://seqlab/results/y")
    storage.ensure_bucket("s3://fresh-bucket/a")
    assert storage.s3_client().head_bucket(Bucket="fresh-bucket")


def test_study_storage_must_be_a_database_url():
    assert SearchConfig(study_storage="postgresql://u:pw@db:5432/optuna").study_storage.startswith("postgresql")
    with pytest.raises(SeqlabError, match="database URL"):
        SearchConfig(study_storage="/tmp/study.db")
    assert redact("postgresql://u:secret@db:5432/optuna") == "postgresql://u:***@db:5432/optuna"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_study_storage_on_postgresql_and_a_clear_error_when_unreachable(postgres):
    import optuna

    from seqlab.tune.study import open_study_storage, study_counts

    study = optuna.create_study(study_name="s", storage=open_study_storage(postgres))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert study_counts(postgres, "s") == "3 complete"  # read back through a new connection
    assert study_counts(postgres, "other") == "not created yet"
    with pytest.raises(SeqlabError, match=r"^cannot open the Optuna study storage postgresql://u:\*\*\*@127.0.0.1:1/x: "
                                          r".*expected a reachable database URL") as e:
        open_study_storage("postgresql://u:secret@127.0.0.1:1/x")
    assert "secret" not in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SeqlabError, match="no database driver"):
        open_study_storage("mysql://u:pw@127.0.0.1:1/x")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "seqlab.cli", "tune", "--dataset", "cfpb", "--study-storage",
                          "postgresql://u:secret@127.0.0.1:1/x"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stdout == ""  # refused before Ray starts (it would log its start-up)
    assert out.stderr.startswith("seqlab: error: cannot open the Optuna study storage postgresql://u:***@")
    assert out.stderr.count("\n") == 1 and "secret" not in out.stderr
