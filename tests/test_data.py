import dataclasses

import numpy as np
import pandas as pd
import pytest

from seqlab.data import CFPB, Artifact, fetch_artifact, prepare, read_table, stratified_split
from seqlab.errors import SeqlabError


def test_fetch_verifies_sha256(tmp_path):
    path = fetch_artifact(CFPB.artifact, tmp_path)
    assert path.name == CFPB.artifact.filename and path.stat().st_size > 10_000_000
    wrong = dataclasses.replace(CFPB.artifact, sha256="0" * 64)
    with pytest.raises(SeqlabError, match="expected 0000"):
        fetch_artifact(wrong, tmp_path)
    assert not path.exists()  # a file that fails its check is not kept


def test_fetch_unknown_package_is_a_clear_error(tmp_path):
    bad = Artifact("no-such-package-seqlab-test==9.9.9", "x.whl", "0" * 64)
    with pytest.raises(SeqlabError, match="could not download no-such-package-seqlab-test"):
        fetch_artifact(bad, tmp_path)


def test_cfpb_splits_and_card():
    prepared = prepare("cfpb")
    counts = prepared.card["counts"]
    assert counts == {"train": 9001, "validation": 999, "test": 3000}  # 10% of each class, rounded
    assert len(prepared.card["classes"]) == 8
    train, val = prepared.split("train"), prepared.split("validation")
    assert list(train.columns) == ["text", "label"]
    # stratified: every class keeps its share within one example
    share = train["label"].value_counts(normalize=True) - val["label"].value_counts(normalize=True)
    assert share.abs().max() < 0.01
    card = (prepared.root / "README.md").read_text()
    assert "public domain" in card and CFPB.artifact.sha256 in card and "Debt collection" in card


def test_stratified_split_is_deterministic():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    a, b = stratified_split(y, 0.1, seed=3), stratified_split(y, 0.1, seed=3)
    assert (a == b).all() and a.sum() == 10
    assert [int(a[y == c].sum()) for c in range(3)] == [5, 3, 2]
    assert not (a == stratified_split(y, 0.1, seed=4)).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_user_file(tmp_path, suffix):
    df = pd.DataFrame({"body": [f"text number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(60)],
                       "tag": ["cat" if i % 2 else "dog" for i in range(60)], "other": range(60)})
    path = tmp_path / f"mine{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path)
    prepared = prepare(str(path), text_column="body", label_column="tag", data_dir=tmp_path / "cache")
    assert prepared.name == "mine"
    assert sum(prepared.card["counts"].values()) == 60
    assert prepared.card["counts"]["test"] == 6 and prepared.card["classes"] == ["cat", "dog"]
    assert len(read_table(str(path))) == 60


def test_user_file_errors_name_the_problem(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": ["x"] * 20, "b": ["y"] * 20}).to_csv(path, index=False)
    with pytest.raises(SeqlabError, match="no column 'text'.*columns are \\['a', 'b'\\]"):
        prepare(str(path), text_column="text", label_column="b", data_dir=tmp_path)
    with pytest.raises(SeqlabError, match="needs --text-column and --label-column"):
        prepare(str(path), data_dir=tmp_path)
    with pytest.raises(SeqlabError, match="does not exist"):
        prepare(str(tmp_path / "missing.csv"), text_column="a", label_column="b", data_dir=tmp_path)
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(SeqlabError, match="unknown file type"):
        read_table(str(tmp_path / "d.json"))
