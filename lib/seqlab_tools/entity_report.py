"""The thesis-style tables of the entity-mention models (``jobs/entity_results.py``).

Runs are ``seqlab train`` commands, one per (dataset, model, fold) or cross-domain pair; each
leaves ``<out>/runs/<name>.json`` (see :func:`seqlab_tools.experiments.train`). The tables are rebuilt
from those records: 5-fold means of macro P/R/F1, per-class F1, the cross-domain matrix, the word
vector comparison, and a figure of LSTM+CA's attention on real test sentences.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from seqlab import provenance, report
from seqlab_tools.experiments import flags_of

COMMAND = "python jobs/entity_results.py"
# LSTM+CA+feat / LSTM+CA / best baseline macro-F1 of the thesis (../shared/SEEDS.md, write-up 003)
THESIS = ("Thesis (ADR corpora, 5-fold CV, macro-F1 of LSTM+CA+feat / LSTM+CA / best baseline): "
          "CADEC .821 / .815 / .761, Twitter .823 / .794 / .589, PsyTAR .888 / .812 / .881, "
          "TwiMed-PubMed .878 / .874 / .872; cross-domain drops of 19-39 points; in-domain vectors up to +8 points.")


def _flags(ds: dict, model: dict, *more: str) -> str:
    """``seqlab train`` flags of a dataset and model entry of the config (+ ``more``)."""
    extra = model.get("by_dataset", {}).get(ds["name"], "")  # e.g. more epochs on a small corpus
    parts = [f"--dataset {ds['name']}", ds["args"], f"--model {model['name']}", model["args"], extra, *more]
    return " ".join(p for p in parts if p)


def runs_for(cfg: dict) -> list[dict]:
    """Every run of the experiment config: ``{"name", "group", "args"}``, named from their settings."""
    runs = []
    featured = next(m for m in cfg["models"] if m["name"] == cfg["embeddings"]["model"])
    for ds in cfg["datasets"]:
        for model in cfg["models"]:
            for fold in range(cfg["folds"]):
                runs.append({"name": f"{ds['name']}-{model['name']}-fold{fold}", "group": "cv",
                             "args": _flags(ds, model, f"--fold {fold}")})
        for vectors in cfg["embeddings"]["vectors"]:
            for fold in range(cfg["folds"]):
                runs.append({"name": f"{ds['name']}-{featured['name']}-{vectors}-fold{fold}", "group": "embeddings",
                             "args": _flags(ds, featured, f"--embeddings {vectors} --embed-dim 300 --fold {fold}")})
    for cd in cfg["cross_domain"]:
        ds = next(d for d in cfg["datasets"] if d["name"] == cd["dataset"])
        for a in cd["domains"]:
            for b in cd["domains"]:
                folds = range(cfg["folds"]) if a == b else [None]  # in-domain: cross-validated
                for fold in folds:
                    tag = "" if fold is None else f"-fold{fold}"
                    runs.append({"name": f"{ds['name']}-xd-{a}-{b}{tag}", "group": "cross-domain",
                                 "args": _flags(ds, featured, f"--keep-labels {','.join(cd['labels'])}",
                                                f"--train-domain {a} --test-domain {b}",
                                                "" if fold is None else f"--fold {fold}")})
    return runs


def load(out_dir: Path) -> pd.DataFrame:
    """One row per finished run: its flags and test figures."""
    rows = []
    for p in sorted((out_dir / "runs").glob("*.json")):
        r = json.loads(p.read_text())
        flags = flags_of(shlex.split(r["command"])[1:])
        t = r["test"]
        rows.append({"run": r["name"], "dataset": flags["--dataset"], "model": flags["--model"],
                     "embeddings": flags.get("--embeddings", "random"), "fold": flags.get("--fold"),
                     "train_domain": flags.get("--train-domain"), "test_domain": flags.get("--test-domain"),
                     "P": t["macro_precision"], "R": t["macro_recall"], "F1": t["macro_f1"], "accuracy": t["accuracy"],
                     "n": t["n"], "per_class_f1": t["per_class_f1"], "epochs": r["epochs"],
                     "train_time_s": r["train_time_s"], "checkpoint": r["checkpoint"], "commit": r["commit"],
                     "hardware": r["hardware"], "versions": r["versions"]})
    return pd.DataFrame(rows)


def _mean_sd(x: pd.Series) -> str:
    return f"{x.mean():.3f} ± {x.std(ddof=0):.3f}" if len(x) > 1 else f"{x.mean():.3f}"


def model_table(df: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Model x dataset: 5-fold mean macro P, R, F1 (random-initialised word vectors)."""
    cv = df[df["train_domain"].isna() & (df["embeddings"] == "random")]
    rows = []
    for (dataset, model), g in cv.groupby(["dataset", "model"]):
        rows.append({"dataset": dataset, "model": model, "folds": len(g), "macro P": g["P"].mean(),
                     "macro R": g["R"].mean(), "macro F1": _mean_sd(g["F1"]), "F1": g["F1"].mean(),
                     "train s/fold": g["train_time_s"].mean()})
    table = pd.DataFrame(rows)
    table["order"] = table["model"].map({m: i for i, m in enumerate(order)})
    return table.sort_values(["dataset", "order"]).drop(columns="order").reset_index(drop=True)


def per_class_table(df: pd.DataFrame, model: str) -> pd.DataFrame:
    cv = df[df["train_domain"].isna() & (df["embeddings"] == "random") & (df["model"] == model)]
    rows = []
    for dataset, g in cv.groupby("dataset"):
        per = pd.DataFrame(list(g["per_class_f1"]))
        rows += [{"dataset": dataset, "class": c, "F1 (mean of folds)": per[c].mean()} for c in per.columns]
    return pd.DataFrame(rows)


def cross_domain_table(df: pd.DataFrame) -> pd.DataFrame:
    """Train domain x test domain macro-F1; the diagonal is 5-fold in-domain, the rest whole corpora."""
    xd = df[df["train_domain"].notna()]
    rows = []
    for (dataset, a), g in xd.groupby(["dataset", "train_domain"]):
        row = {"dataset": dataset, "train on": a}
        for b, h in g.groupby("test_domain"):
            row[f"test {b}"] = h["F1"].mean()
        in_domain = row.get(f"test {a}")
        others = [v for k, v in row.items() if k.startswith("test ") and k != f"test {a}"]
        row["drop (points)"] = round(100 * (in_domain - np.mean(others)), 1) if in_domain is not None and others else None
        rows.append(row)
    table = pd.DataFrame(rows)
    tests = sorted(c for c in table.columns if c.startswith("test "))
    return table[["dataset", "train on", *tests, "drop (points)"]] if len(table) else table


def embeddings_table(df: pd.DataFrame, model: str) -> pd.DataFrame:
    cv = df[df["train_domain"].isna() & (df["model"] == model)]
    table = cv.pivot_table(index="dataset", columns="embeddings", values="F1", aggfunc="mean")
    return table.reset_index()


def attention_figure(checkpoint: str, frame: pd.DataFrame, path: Path, title: str) -> None:
    """LSTM+CA's attention over each sentence's tokens (the mention in bold), one row per sentence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqlab.checkpoint import local_dir
    from seqlab.tasks.entity import EntityClassifier

    with local_dir(checkpoint) as d:
        clf = EntityClassifier(d)
    results = clf.predict(frame)
    fig, axes = plt.subplots(len(results), 1, figsize=(12, 1.3 * len(results)))
    for ax, res, (_, row) in zip(np.atleast_1d(axes), results, frame.iterrows()):
        att = res["attention"][:40]
        w = np.array([a["weight"] for a in att])[None, :]
        ax.imshow(w, cmap="Reds", aspect="auto", vmin=0, vmax=max(w.max(), 1e-6))
        ax.set_xticks(range(len(att)))
        ax.set_xticklabels([a["token"] for a in att], rotation=60, fontsize=7)
        for lab, a in zip(ax.get_xticklabels(), att):
            lab.set_fontweight("bold" if a["mention"] else "normal")
        ax.set_yticks([])
        ax.set_title(f"gold {row['label']} / predicted {res['label']} ({res['probabilities'][res['label']]:.2f}); "
                     f"weights {w.min():.3f}-{w.max():.3f}, uniform {1 / len(res['attention']):.3f}",
                     fontsize=8, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def made_by(df: pd.DataFrame) -> str:
    commits = ", ".join(sorted(set(df["commit"]))) if len(df) else provenance.git_commit()
    first = df.iloc[0] if len(df) else provenance.record()
    return "How it was made:\n" + provenance.markdown({
        "command": COMMAND, "commit": commits, "hardware": first["hardware"], "versions": first["versions"]}) + (
        "\n- Each run's own `seqlab train` command, commit and per-epoch history: `runs/<name>.json`"
        "\n- Data: the dataset cards in `datasets/` (source, licence, sha256, fold rule)")


BASELINE = "mention-tfidf-linear"


def baseline_lines(main: pd.DataFrame, best: pd.DataFrame) -> list[str]:
    """The best deep model's mean F1 against the TF-IDF baseline's, per dataset (where the baseline ran)."""
    base = main[main["model"] == BASELINE].set_index("dataset")["F1"]
    if base.empty:
        return []
    f1 = main.set_index(["dataset", "model"])["F1"]
    rows = [f"- {d}: {m} {f1[d, m]:.3f} against {base[d]:.3f} ({(f1[d, m] - base[d]) * 100:+.1f} points; "
            f"{'at or above' if f1[d, m] >= base[d] else '**below**'} the baseline)"
            for d, m in best.itertuples(index=False) if d in base.index]
    return ["\nThe best deep model against the ten-second baseline (`mention-tfidf-linear`: TF-IDF of the mention's "
            "character 2-5-grams and of the word 1-2-grams of the 5 words either side, each block L2-normalised, and "
            "a linear SVM with balanced class weights, C picked on the validation split), mean macro-F1 over the "
            "folds:\n", *rows, ""]


def write_tables(df: pd.DataFrame, cfg: dict, out_dir: Path) -> None:
    order = [m["name"] for m in cfg["models"]]
    main = model_table(df, order)
    main.to_csv(out_dir / "table.csv", index=False)
    featured = cfg["embeddings"]["model"]
    deep = main[main["model"] != BASELINE]
    best = deep.loc[deep.groupby("dataset")["F1"].idxmax(), ["dataset", "model"]]
    parts = ["# Entity-mention classifiers: 5-fold cross-validation (folds by document)\n",
             "Macro precision, recall and F1 on each held-out fold, averaged over the folds (± standard deviation "
             "of the fold F1). Word vectors start random unless said otherwise. Model settings: "
             "`configs/experiments/entities.yaml`.\n",
             report.markdown_table(main.drop(columns="F1"), formats={"folds": "{:.0f}", "train s/fold": "{:.0f}"}),
             "\nBest model per dataset: " + ", ".join(f"{d}: **{m}**" for d, m in best.itertuples(index=False)) + "\n",
             *baseline_lines(main, best),
             f"\n## Per-class F1 of {featured}\n", report.markdown_table(per_class_table(df, featured)),
             f"\n## Word vectors ({featured}, 300-d vectors for spacy/word2vec)\n",
             "`random`: learned from scratch (200-d); `spacy`: general-domain en_core_web_md vectors; `word2vec`: "
             "trained on the training folds' own sentences (in-domain, small).\n",
             report.markdown_table(embeddings_table(df, featured))]
    xd = cross_domain_table(df)
    if len(xd):
        parts += [f"\n## Cross-domain ({featured}): train on one corpus, test on another\n",
                  "Diagonal: 5-fold cross-validation inside the corpus; off-diagonal: trained on all of one corpus, "
                  "tested on all of another, on the labels they share (see the config). Drop = diagonal minus the "
                  "mean of the row's other cells, in F1 points. Each corpus here is 20 abstracts, so an in-domain "
                  "fold trains on 16 of them and tests on 4: the diagonal is noisy and trains on less than the "
                  "off-diagonal cells do.\n", report.markdown_table(xd, formats={"drop (points)": "{:+.1f}"})]
    parts += [f"\n{THESIS}\n", "\n![attention](attention.png)\n", "\n" + made_by(df) + "\n"]
    (out_dir / "table.md").write_text("\n".join(parts))
