"""Preparing a dataset: train/validation/test Parquet splits and a dataset card, cached by name.

``dataset`` is a built-in name (:data:`seqlab.data.catalog.BUILTIN`), a CSV/TSV/JSONL/Parquet path
or URI, a .smi list of SMILES, or a folder of brat .txt/.ann files. Built-ins and user data go
through the same split and card code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqlab.data.artifacts import fetch_artifact
from seqlab.data.catalog import BUILTIN, BuiltinDataset, clean
from seqlab.data.molecules import MOLECULE, molecule_rows, summarise_invalid
from seqlab.data.tables import read_table
from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home

SPLITS = ("train", "validation", "test")


# A built-in without a test file gets this fixed share of its rows as test split.
BUILTIN_TEST_FRACTION = 0.1



def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask choosing ``fraction`` of each class, deterministically for ``seed``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for value in np.unique(labels):
        idx = np.flatnonzero(labels == value)
        rng.shuffle(idx)
        mask[idx[: int(round(fraction * len(idx)))]] = True
    return mask


def _tidy(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """A loader's frame with ``text`` and ``label`` first as strings, rows without either dropped.

    Other columns (``drug``, ``condition``, ``mean_rating``) are kept after them.
    """
    missing = [c for c in ("text", "label") if c not in df.columns]
    if missing:
        raise SeqlabError(f"{where}: the loader gave no column {missing[0]!r}; columns are {list(df.columns)}")
    extra = [c for c in df.columns if c not in ("text", "label")]
    out = df.assign(text=df["text"].astype("string"), label=df["label"].astype("string"))
    out = out[["text", "label", *extra]]
    out = out.dropna(subset=["text", "label"])
    out = out[out["text"].str.strip() != ""]
    return out.reset_index(drop=True)


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
    extra = [c for c in splits["train"].columns if c not in ("text", "label")]
    if extra:  # only cards of data with more columns than text and label say so
        card["extra_columns"] = extra
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
    columns = (f"`text` (from {card['text_column']!r}), `label` (from {card['label_column']!r})"
               + "".join(f", `{c}`" for c in card.get("extra_columns", [])))
    lines = [f"# Dataset card: {card['title']}", "", f"- Name: `{card['name']}`",
             f"- Source: {card['source']}", f"- Licence: {card['licence']}",
             f"- Artifact sha256: `{card.get('sha256', 'n/a')}`",
             f"- Splits: {card['split_rule']}", f"- Columns: {columns}", *_molecule_lines(card), "",
             "| class | " + " | ".join(card["counts"]) + " |", "|---|" + "---:|" * len(card["counts"])]
    for lab in card["classes"]:
        lines.append(f"| {lab} | " + " | ".join(str(card["class_balance"][s][lab]) for s in card["counts"]) + " |")
    lines.append("| **total** | " + " | ".join(str(n) for n in card["counts"].values()) + " |")
    return "\n".join(lines) + "\n"


def _molecule_lines(card: dict) -> list[str]:
    if card.get("kind") != "molecules":
        return []
    inv = card["invalid"]
    reasons = "; ".join(f"{n} × {kind}" for kind, n in inv["reasons"].items())
    lines = [f"- SMILES: canonicalised by {card['canonical_by']}",
             f"- Invalid or refused SMILES, left out: {inv['count']}" + (f" ({reasons})" if reasons else "")]
    lines += [f"  - {ex['where']}: `{ex['smiles']}`: {ex['reason']}" for ex in inv["examples"]]
    return lines + [f"- Repeats of an earlier molecule after canonicalisation, left out: {card['duplicates']}"]


def _builtin_splits(raw: dict[str, pd.DataFrame], val_fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """Train/validation/test of a loader's frames: its own test split, or a fixed stratified share."""
    train = raw["train"]
    if "fold" in train.columns:  # cross-validation data: fold 0 is the default test split
        is_test = (train["fold"] == 0).to_numpy()
        train, test = train[~is_test].reset_index(drop=True), train[is_test].reset_index(drop=True)
    elif "test" in raw:
        test = raw["test"]
    else:  # seed + 1, as for user data, so that test and validation draws differ
        is_test = stratified_split(train["label"].to_numpy(), BUILTIN_TEST_FRACTION, seed + 1)
        train, test = train[~is_test].reset_index(drop=True), train[is_test].reset_index(drop=True)
    val = stratified_split(train["label"].to_numpy(), val_fraction, seed)
    return {"train": train[~val].reset_index(drop=True), "validation": train[val].reset_index(drop=True),
            "test": test}


def _fold_rule(val_fraction: float, seed: int, fold_seed: int | None = None) -> str:
    folds = "5 folds by document" + ("" if fold_seed is None else f" (seed {fold_seed})")
    return (f"{folds}; test = fold 0 unless --fold picks another; validation = {val_fraction:g} of the other "
            f"folds, stratified by class, seed {seed}")


def _split_rule(spec: BuiltinDataset, val_fraction: float, seed: int) -> str:
    if spec.folds:
        return _fold_rule(val_fraction, seed)
    if spec.test_file:
        return (f"test = the package's {spec.test_file}; validation = {val_fraction:g} of {spec.train_file}, "
                f"stratified by class, seed {seed}")
    return (f"test = {BUILTIN_TEST_FRACTION:g} of {spec.train_file}, stratified by class, seed {seed + 1}; "
            f"validation = {val_fraction:g} of the rest, stratified by class, seed {seed}")


def _prepare_builtin(spec: BuiltinDataset, val_fraction: float, seed: int, data_dir: Path) -> PreparedData:
    root = data_dir / spec.name / f"seed{seed}-val{val_fraction:g}"
    if (root / "card.json").exists():
        return PreparedData(spec.name, root)
    loaded = spec.load(fetch_artifact(spec.artifact))
    invalid = loaded.pop("invalid", None)
    if "train" not in loaded or ("test" in loaded) != bool(spec.test_file):
        raise SeqlabError(f"the {spec.name} loader gave splits {sorted(loaded)}; expected train"
                          + (" and test" if spec.test_file else " only"))
    raw = {s: _tidy(df, f"{spec.artifact.filename} ({spec.name}, {s})") for s, df in loaded.items()}
    card = dict(name=spec.name, title=spec.title, source=spec.source, licence=spec.licence,
                sha256=spec.artifact.sha256, text_column=spec.text_column, label_column=spec.label_column,
                split_rule=_split_rule(spec, val_fraction, seed))
    if spec.molecules:
        repeats = {s: df["text"].duplicated().to_numpy() for s, df in raw.items()}
        raw = {s: df[~repeats[s]].reset_index(drop=True) for s, df in raw.items()}
        card |= _molecule_fields(summarise_invalid(list(invalid.itertuples(index=False, name=None))),
                                 sum(int(r.sum()) for r in repeats.values()))
    return _write(spec.name, root, _builtin_splits(raw, val_fraction, seed), card)


def _molecule_fields(invalid: dict, duplicates: int) -> dict:
    """The card fields of molecule data: ``kind``, the RDKit that canonicalised it, what was left out."""
    import rdkit

    return {"kind": "molecules", "canonical_by": f"RDKit {rdkit.__version__}", "invalid": invalid,
            "duplicates": duplicates}


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
    molecules: bool = False,
) -> PreparedData:
    """Make ``train``/``validation``/``test`` Parquet splits and a card; cached by name.

    ``dataset`` is a built-in name (see ``BUILTIN``) or a CSV/Parquet path or URI. A user file
    without ``test_data`` gets a deterministic stratified test split too. With ``molecules`` a
    user file holds SMILES (see :func:`molecule_rows`); they are stored RDKit-canonical.
    """
    data_dir = data_dir or seqlab_home() / "data"
    if dataset in BUILTIN:
        return _prepare_builtin(BUILTIN[dataset], val_fraction, seed, data_dir)
    if "://" not in dataset and not Path(dataset).expanduser().exists():
        raise SeqlabError(
            f"{dataset!r} is not a built-in dataset and the file does not exist; expected one of "
            f"{', '.join(BUILTIN)} or a .csv/.parquet path or URI"
        )

    name = Path(dataset.rstrip("/").split("://")[-1]).name.split(".")[0] or "data"
    if molecules:
        return _prepare_molecules(name, dataset, text_column, label_column, test_data, val_fraction,
                                  test_fraction, seed, data_dir)
    if "://" not in dataset and Path(dataset).expanduser().is_dir() and not any(
            Path(dataset).expanduser().glob("*.parquet")):
        from seqlab.data.entities import brat_folder_rows

        return _prepare_mentions(name, brat_folder_rows(Path(dataset).expanduser(), seed=seed), dataset,
                                 "brat standoff folder (.txt + .ann)", val_fraction, seed, data_dir)
    table = read_table(dataset)
    if {"start", "end"} <= set(table.columns):  # entity mentions: text, start, end, label[, doc, domain]
        from seqlab.data.entities import user_rows

        renamed = table.rename(columns={text_column or "text": "text", label_column or "label": "label"})
        return _prepare_mentions(name, user_rows(renamed, where=dataset, seed=seed), dataset,
                                 "mention table (text, start, end, label)", val_fraction, seed, data_dir)
    if not text_column or not label_column:
        raise SeqlabError("a data file needs --text-column and --label-column naming its text and label columns "
                          "(or start and end columns for entity mentions)")
    df = clean(table, text_column, label_column, dataset)
    if len(df) < 10:
        raise SeqlabError(f"{dataset} has {len(df)} usable rows; at least 10 are needed")
    test = clean(read_table(test_data), text_column, label_column, test_data) if test_data else None
    splits = _user_splits(df, test, test_fraction, val_fraction, seed)
    digest = hashlib.sha256(pd.util.hash_pandas_object(pd.concat(splits.values())).values.tobytes()).hexdigest()
    root = data_dir / name / digest[:12]
    card = dict(name=name, title=f"user data {dataset}", source=dataset, licence="as provided by the user",
                sha256=digest, text_column=text_column, label_column=label_column,
                split_rule=_user_split_rule(test_data, test_fraction, val_fraction, seed))
    return _write(name, root, splits, card)


def _user_splits(df: pd.DataFrame, test: pd.DataFrame | None, test_fraction: float, val_fraction: float,
                 seed: int) -> dict[str, pd.DataFrame]:
    """Train/validation/test of a user's rows: ``test`` as given, or a stratified share (seed + 1)."""
    if test is None:
        is_test = stratified_split(df["label"].to_numpy(), test_fraction, seed + 1)
        df, test = df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)
    val = stratified_split(df["label"].to_numpy(), val_fraction, seed)
    return {"train": df[~val].reset_index(drop=True), "validation": df[val].reset_index(drop=True), "test": test}


def _user_split_rule(test_data: str | None, test_fraction: float, val_fraction: float, seed: int) -> str:
    return ((f"test = {test_data}" if test_data else f"test = {test_fraction:g} stratified, seed {seed + 1}")
            + f"; validation = {val_fraction:g} of the rest, stratified, seed {seed}")


def _prepare_molecules(name: str, dataset: str, text_column: str | None, label_column: str | None,
                       test_data: str | None, val_fraction: float, test_fraction: float, seed: int,
                       data_dir: Path) -> PreparedData:
    """A user's SMILES as canonical molecules in train/validation/test; refused rows counted on the card."""
    df, refused, repeats, column = molecule_rows(dataset, text_column, label_column)
    if len(df) < 10:
        raise SeqlabError(f"{dataset} has {len(df)} valid molecules; at least 10 are needed")
    test = None
    if test_data:
        test, more, more_repeats, _ = molecule_rows(test_data, text_column, label_column)
        refused, repeats = refused + more, repeats + more_repeats
    splits = _user_splits(df, test, test_fraction, val_fraction, seed)
    digest = hashlib.sha256(pd.util.hash_pandas_object(pd.concat(splits.values())).values.tobytes()).hexdigest()
    smi = dataset.lower().endswith((".smi", ".txt"))
    card = dict(name=name, title=f"user molecules {dataset}", source=dataset, licence="as provided by the user",
                sha256=digest, text_column="the first field of each line" if smi else column,
                label_column=label_column or f"none: every row is '{MOLECULE}'",
                split_rule=_user_split_rule(test_data, test_fraction, val_fraction, seed))
    card |= _molecule_fields(summarise_invalid(refused), repeats)
    # its own folder: the same file prepared as text must not share a card with it
    return _write(name, data_dir / name / f"molecules-{digest[:12]}", splits, card)


def _prepare_mentions(name: str, rows: pd.DataFrame, source: str, kind: str, val_fraction: float, seed: int,
                      data_dir: Path) -> PreparedData:
    """A user's entity mentions as train/validation/test by document fold (fold 0 = test)."""
    if len(rows) < 10:
        raise SeqlabError(f"{source} has {len(rows)} mentions; at least 10 are needed")
    splits = _builtin_splits({"train": _tidy(rows, source)}, val_fraction, seed)
    digest = hashlib.sha256(pd.util.hash_pandas_object(rows).values.tobytes()).hexdigest()
    card = dict(name=name, title=f"user entity mentions {source}", source=f"{source} ({kind})",
                licence="as provided by the user", sha256=digest, text_column="sentence of the mention",
                label_column="label", split_rule=_fold_rule(val_fraction, seed, fold_seed=seed))
    return _write(name, data_dir / name / digest[:12], splits, card)
