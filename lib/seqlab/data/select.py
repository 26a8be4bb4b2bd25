"""The rows a run uses: ``--fold``, ``--train-domain``/``--test-domain``, ``--keep-labels``, ``--limit``."""

from __future__ import annotations

import pandas as pd

from seqlab.config import DataConfig
from seqlab.data.prepare import PreparedData, prepare, stratified_split
from seqlab.errors import SeqlabError


def prepare_data(data_cfg: DataConfig, *, molecules: bool = False) -> PreparedData:
    """The Parquet splits; ``molecules`` reads SMILES (a user file needs no label column)."""
    return prepare(data_cfg.dataset, text_column=data_cfg.text_column, label_column=data_cfg.label_column,
                   test_data=data_cfg.test_data, val_fraction=data_cfg.val_fraction, seed=data_cfg.split_seed,
                   molecules=molecules)


def load_splits(prepared: PreparedData, data_cfg: DataConfig, splits=("train", "validation", "test")
                ) -> dict[str, pd.DataFrame]:
    """The splits with ``--fold``, the domains, ``--keep-labels`` and ``--limit`` applied."""
    frames = select_rows(prepared, data_cfg) if _regrouped(data_cfg) else {s: prepared.split(s) for s in splits}
    keep = data_cfg.kept_labels()
    if keep:
        unknown = sorted(set(keep) - set(prepared.card["classes"]))
        if unknown:
            raise SeqlabError(f"--keep-labels: {unknown[0]!r} is not a label of {prepared.name}; labels are "
                              f"{', '.join(prepared.card['classes'])}")
    out = {}
    for split in splits:
        df = frames[split]
        if keep:
            df = df[df["label"].isin(keep)].reset_index(drop=True)
        out[split] = df.head(data_cfg.limit) if data_cfg.limit else df
    return out


def load_split(prepared: PreparedData, split: str, data_cfg: DataConfig) -> pd.DataFrame:
    """One split, as :func:`load_splits` gives it."""
    return load_splits(prepared, data_cfg, (split,))[split]


def _regrouped(data_cfg: DataConfig) -> bool:
    return data_cfg.fold is not None or bool(data_cfg.train_domain or data_cfg.test_domain)


def select_rows(prepared: PreparedData, data_cfg: DataConfig) -> dict[str, pd.DataFrame]:
    """Train/validation/test for ``--fold`` and ``--train-domain``/``--test-domain``.

    All rows are pooled; the test rows are fold ``k`` (of the test domain), the training rows the
    other folds (of the train domain), so a document never sits on both sides. Without a fold,
    two different domains are trained and tested on whole. Validation is a stratified share of
    the training rows.
    """
    rows = pd.concat([prepared.split(s) for s in ("train", "validation", "test")], ignore_index=True)
    needed = (["fold"] if data_cfg.fold is not None else []) + (
        ["domain"] if data_cfg.train_domain or data_cfg.test_domain else [])
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise SeqlabError(f"{prepared.name} has no {missing[0]!r} column, which "
                          f"{'--fold' if missing[0] == 'fold' else '--train-domain/--test-domain'} needs "
                          f"(entity datasets and mention tables have one)")
    train_pool, test_pool = rows, rows
    for pool_name, value in (("train", data_cfg.train_domain), ("test", data_cfg.test_domain)):
        if value is None:
            continue
        domains = sorted(rows["domain"].astype(str).unique())
        if value not in domains:
            raise SeqlabError(f"--{pool_name}-domain {value!r} is not a domain of {prepared.name}; domains are "
                              f"{', '.join(domains)}")
        chosen = rows[rows["domain"].astype(str) == value]
        train_pool, test_pool = (chosen, test_pool) if pool_name == "train" else (train_pool, chosen)
    if data_cfg.fold is not None:
        test = test_pool[test_pool["fold"] == data_cfg.fold]
        train_pool = train_pool[train_pool["fold"] != data_cfg.fold]
    elif not (data_cfg.train_domain and data_cfg.test_domain):
        raise SeqlabError("give both --train-domain and --test-domain (two corpora), or --fold (0-4) too, so that "
                          "training and test rows don't overlap")
    elif data_cfg.train_domain == data_cfg.test_domain:
        raise SeqlabError("to train and test within one domain give --fold too (0-4), so that they don't overlap")
    else:
        test = test_pool
    train_pool = train_pool.reset_index(drop=True)
    val = stratified_split(train_pool["label"].to_numpy(), data_cfg.val_fraction, data_cfg.split_seed)
    return {"train": train_pool[~val].reset_index(drop=True), "validation": train_pool[val].reset_index(drop=True),
            "test": test.reset_index(drop=True)}
