"""Experiment records and the tables built from them (``jobs/text_results.py``).

Each run of an experiment list leaves ``<out>/runs/<name>.json``: its ``seqlab train`` command,
commit, hardware, test figures and per-epoch history. The Markdown/CSV tables, learning curves and
the recognisability test are rebuilt from those records, so a partial re-run updates its rows.
"""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from seqlab import provenance, report
from seqlab.checkpoint import local_dir
from seqlab.cli import run
from seqlab.config import DataConfig
from seqlab.models import MODELS
from seqlab.tasks.classify import TextClassifier
from seqlab.tasks.generate import TextGenerator, recognisability

# The write-ups' own figures, shown beside ours (../shared/SEEDS.md)
SEED_FIGURES = {
    "cfpb": "seed 002: no test figure; goals here: macro-F1 >= 0.80 (LSTM), >= 0.83 (MiniLM)",
    "sentences5": "SST-5 anchors: BERT-base 53.2%, tree-LSTM 51.0%; goal > 45%",
    "sentences2": "Kim's CNN 81.5% on the full 10.6k set; goals >= 80% (LSTM), >= 85% (MiniLM)",
    "drugs-condition": "seed 000's 4-class CNN: validation accuracy 53.9% (other data: drug-experience reports)",
}


COUNTS = {"epochs": "{:.0f}", "train time (s)": "{:.0f}", "test n": "{:.0f}", "tokens seen": "{:.0%}"}


def train(spec: dict, common: str, storage: str, out_dir: Path) -> dict:
    argv = ["train", *shlex.split(common), *shlex.split(spec["args"]), "--name", spec["name"], "--storage-path",
            storage]
    out = run(argv)
    history = report.tensorboard_history(Path(storage) / spec["name"] / "tensorboard")
    flags = flags_of(argv)
    record = {"name": spec["name"], "dataset": flags["--dataset"], "model": flags["--model"],
              "category": flags.get("--keep-labels"), "epochs": int(history.index.max()),
              "train_time_s": round(float(history["epoch_time_s"].sum()), 1), "test": out["test"],
              "checkpoint": out["checkpoint"], "history": history.reset_index().to_dict(orient="list"),
              **provenance.record(["seqlab", *argv])}
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    (out_dir / "runs" / f"{spec['name']}.json").write_text(json.dumps(record, indent=2))
    return record


def copy_cards(records: list[dict], out_dir: Path) -> None:
    """Each dataset's card (source, licence, sha256, split rule, class balance) beside the tables."""
    from seqlab.data.prepare import prepare

    (out_dir / "datasets").mkdir(exist_ok=True)
    for name in sorted({r["dataset"] for r in records}):
        card = prepare(name).root / "README.md"
        (out_dir / "datasets" / f"{name}.md").write_text(card.read_text())


def flags_of(argv: list[str]) -> dict[str, str]:
    return dict(zip(argv[1::2], argv[2::2]))  # every `seqlab train` flag used here takes one value


def embeddings_label(flags: dict) -> str:
    if "freeze_embeddings" not in MODELS[flags["--model"]].options():
        return "its own, pre-trained" if flags["--model"] == "minilm" else "–"
    frozen = " frozen" if flags.get("--freeze-embeddings") == "true" else ""
    return flags.get("--embeddings", "random") + frozen


def load_records(out_dir: Path) -> list[dict]:
    records = [json.loads(p.read_text()) for p in sorted((out_dir / "runs").glob("*.json"))]
    for r in records:  # `seqlab train ...`: the label follows from the run's own command
        r["embeddings"] = embeddings_label(flags_of(shlex.split(r["command"])[1:]))
    return records


def setting(flags: dict) -> str:
    """What a run did beyond its model's defaults that the table should show: windows, class weights."""
    parts = []
    if flags.get("--window", "0") != "0":
        parts.append(f"windows of {flags['--window']}")
    if flags.get("--class-weight", "none") != "none":
        parts.append(f"{flags['--class-weight']} class weights")
    return "; ".join(parts) or "–"


def classifier_table(records: list[dict], out_dir: Path, tuned: Path | None = None) -> None:
    """``table.md``/``.csv`` of every classifier run (+ a search's ``test_metrics.json``), curves per dataset."""
    if not any("macro_f1" in r["test"] for r in records):
        return
    rows = []
    for r in (r for r in records if "macro_f1" in r["test"]):
        flags = flags_of(shlex.split(r["command"])[1:])
        seen = tokens_seen(r["dataset"], r["model"], int(flags.get("--max-len", DataConfig.max_len)),
                           flags.get("--normalize", "default"))
        rows.append({"dataset": r["dataset"], "model": r["model"], "embeddings": r["embeddings"],
                     "setting": setting(flags), "epochs": r["epochs"], "tokens seen": seen, "test accuracy": r["test"]["accuracy"], "test macro-F1": r["test"]["macro_f1"],
                     "test n": r["test"]["n"], "train time (s)": r["train_time_s"], "run": r["name"]})
    if tuned is not None and tuned.exists():  # the tuned single LSTM of the CFPB search (1 worker per trial)
        t = json.loads(tuned.read_text())
        rows.append({"dataset": "cfpb", "model": "lstm (tuned, results/cfpb-lstm)", "embeddings": "random",
                     "setting": "–", "epochs": None, "tokens seen": tokens_seen("cfpb", "lstm", search_max_len(t["command"])),
                     "test accuracy": t["test"]["accuracy"], "test macro-F1": t["test"]["macro_f1"],
                     "test n": t["test"]["n"], "train time (s)": None, "run": t["best_trial"]})
    table = pd.DataFrame(rows).sort_values(["dataset", "model", "embeddings"]).reset_index(drop=True)
    table.to_csv(out_dir / "table.csv", index=False)
    refs = "\n".join(f"- `{k}`: {v}" for k, v in SEED_FIGURES.items())
    (out_dir / "table.md").write_text(
        "# Text classifiers: every model x dataset on a fixed test split\n\n"
        + report.markdown_table(table, formats=COUNTS)
        + baseline_section(table)
        + f"\n\nReference figures:\n{refs}\n\n" + _made_by(records) + "\n")
    for dataset, group in pd.DataFrame([r for r in records if "macro_f1" in r["test"]]).groupby("dataset"):
        report.plot_curves({r["name"]: pd.DataFrame(r["history"]).set_index("epoch") for _, r in group.iterrows()},
                           out_dir / f"curves-{dataset}.png", "val/macro_f1", f"{dataset}: learning curves")


def search_max_len(command: str) -> int:
    """``--max-len`` of a ``seqlab tune`` command: its flag, else its ``--config``'s ``data.max_len``, else the default."""
    import yaml

    flags = flags_of(shlex.split(command)[1:])
    if "--max-len" in flags:
        return int(flags["--max-len"])
    config = yaml.safe_load(Path(flags["--config"]).read_text()) if "--config" in flags else {}
    return int((config.get("data") or {}).get("max_len", DataConfig.max_len))


@functools.cache
def _token_counts(dataset: str, kind: str, normalize: str) -> np.ndarray:
    """Tokens in each test text of ``dataset`` as a tokenizer of ``kind`` splits it, before any cut."""
    from seqlab.data.select import load_split, prepare_data

    cfg = DataConfig(dataset=dataset)
    texts = load_split(prepare_data(cfg), "test", cfg)["text"].tolist()
    if kind == "wordpiece":
        from seqlab.tokenizers.wordpiece import WordPieceTokenizer

        tok = WordPieceTokenizer.pretrained()
        return np.array([len(tok.pieces(t)) for t in texts])
    from seqlab.tokenizers.words import split_words

    return np.array([len(split_words(t, normalize)) for t in texts])


def tokens_seen(dataset: str, model: str, max_len: int, normalize: str = "default") -> float:
    """The share of the test texts' tokens that a model reading the first ``max_len`` of them sees (the
    n-gram baseline reads every text whole: 1)."""
    kind = MODELS[model].tokenizer
    if kind == "ngrams":
        return 1.0
    n = _token_counts(dataset, kind, normalize)
    room = max_len - 2 if kind == "wordpiece" else max_len  # [CLS] and [SEP] take two places
    return float(np.minimum(n, room).sum() / max(n.sum(), 1))


BASELINE = "tfidf-linear"
# test macro-F1 the best deep model must reach on a dataset: above the baseline by this margin (and this floor)
GOALS = {"cfpb": (0.03, 0.80)}


def against_baseline(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the baseline's test macro-F1, the best deep model's (by test macro-F1), the gap and
    the goal (at or above the baseline; CFPB: >= 0.80 and >= the baseline + 0.03)."""
    rows = []
    for dataset, group in table.groupby("dataset"):
        base, deep = group[group["model"] == BASELINE], group[group["model"] != BASELINE]
        if base.empty or deep.empty:
            continue
        b = float(base["test macro-F1"].max())
        best = deep.loc[deep["test macro-F1"].idxmax()]
        margin, floor = GOALS.get(dataset, (0.0, 0.0))
        goal = max(b + margin, floor)
        rows.append({"dataset": dataset, "TF-IDF + linear SVM": b, "best deep model": best["model"],
                     "its run": best["run"], "best deep macro-F1": float(best["test macro-F1"]),
                     "gap": float(best["test macro-F1"]) - b, "goal": goal,
                     "met": "yes" if best["test macro-F1"] >= goal else "**no**"})
    return pd.DataFrame(rows)


def baseline_section(table: pd.DataFrame) -> str:
    vs = against_baseline(table)
    if vs.empty:
        return ""
    return ("\n\n## The best deep model against the baseline (test macro-F1)\n\nThe baseline is `tfidf-linear`: TF-IDF "
            "of character 2-5-grams (within word boundaries) and a linear SVM (`class_weight=\"balanced\"`, C picked "
            "on the validation split), fitted in one pass; it reads the whole text, while the deep models read the "
            "first `--max-len` tokens of it (the table's \"tokens seen\": the share of the test texts' tokens within that cut). Goal: at or above the baseline; CFPB: >= 0.80 and >= the baseline + "
            "0.03.\n\n" + report.markdown_table(vs))


def generator_table(records: list[dict], out_dir: Path) -> pd.DataFrame:
    gens = [r for r in records if "nats_per_char" in r["test"]]
    table = pd.DataFrame([{"generator": r["name"], "category": r["category"] or "all four (conditional)",
                           "epochs": r["epochs"], "held-out nats/char": r["test"]["nats_per_char"],
                           "bits/char": r["test"]["bits_per_char"], "char accuracy": r["test"]["char_accuracy"],
                           "train nats/char (last epoch)": r["history"]["train/loss"][-1],
                           "train time (s)": r["train_time_s"]} for r in gens])
    table.to_csv(out_dir / "generator.csv", index=False)
    (out_dir / "generator.md").write_text(
        "# Char-level LSTM generators on Drugs.com reviews\n\nHeld-out = the reviews of the package's test file "
        "for that condition. Seed 000 (training set, other data): 1.23-1.28 nats/char, 61-63% accuracy.\n\n"
        + report.markdown_table(table, formats=COUNTS) + "\n\n" + _made_by(gens) + "\n")
    report.plot_curves({r["name"]: pd.DataFrame(r["history"]).set_index("epoch") for r in gens},
                       out_dir / "curves-generators.png", "val/char_accuracy", "char-level generators")
    return table


def recognisability_report(records: list[dict], cfg: dict, out_dir: Path) -> dict:
    by_name = {r["name"]: r for r in records}
    clf_run = by_name[cfg["classifier"]]
    with local_dir(clf_run["checkpoint"]) as d:
        classifier = TextClassifier(d)
    results, samples = {}, []
    for r in (r for r in records if "nats_per_char" in r["test"]):
        with local_dir(r["checkpoint"]) as d:
            gen = TextGenerator(d)
        categories = [r["category"]] if r["category"] else gen.labels
        texts = {c: gen.generate(category=c, n=cfg["samples_per_category"], length=cfg["length"],
                                 temperature=cfg["temperature"], seed=0) for c in categories}
        results[r["name"]] = recognisability(classifier, texts)
        samples += [(r["name"], c, t[0]) for c, t in texts.items()]
    categories = sorted({c for res in results.values() for c in res["per_category"]})
    per_cat = pd.DataFrame([{"generated by": name, **{c: res["per_category"].get(c) for c in categories},
                             "all": res["accuracy"]} for name, res in results.items()])
    per_cat_models = [n for n in results if by_name[n]["category"]]
    correct = sum(results[n]["correct"] for n in per_cat_models)
    total = sum(results[n]["n"] for n in per_cat_models)
    real = clf_run["test"]["accuracy"]
    summary = {"classifier": cfg["classifier"], "real_test_accuracy": real,
               "per_category_generators_accuracy": correct / max(total, 1), "n_generated": total,
               "conditional_accuracy": results.get("gen-conditional", {}).get("accuracy"), "results": results}
    (out_dir / "recognisability.json").write_text(json.dumps(summary, indent=2))
    examples = "\n".join(f"- **{name}** ({cat}): {text[:300]!r}" for name, cat, text in samples)
    (out_dir / "recognisability.md").write_text(f"""# Is the generated text recognisable?

A classifier trained on real reviews of the four conditions (`{cfg['classifier']}`) names the condition
of texts that the generators wrote ({cfg['samples_per_category']} per category, {cfg['length']} characters,
temperature {cfg['temperature']}, seed 0). Chance is 25%. Seed 000 got 25% on generated text.

| text | classifier accuracy |
|---|---:|
| real held-out reviews (test split) | {real:.3f} |
| written by the four per-category generators | {summary['per_category_generators_accuracy']:.3f} (n={total}) |
| written by the conditional generator | {summary['conditional_accuracy'] or float('nan'):.3f} |

Accuracy per category:

{report.markdown_table(per_cat)}

One sample of each:

{examples}

{_made_by([clf_run] + [by_name[n] for n in results])}
""")
    return summary


def _made_by(records: list[dict]) -> str:
    r = records[0] if records else provenance.record()
    commits = ", ".join(sorted({x["commit"] for x in records})) or r["commit"]
    return "How it was made:\n" + provenance.markdown({
        "command": "python jobs/text_results.py", "commit": commits, "hardware": r["hardware"],
        "versions": r["versions"]}) + (
        "\n- Each run's own `seqlab train` command, commit and per-epoch history: `runs/<name>.json`"
        "\n- Data: the dataset cards in `datasets/` (source, licence, sha256, split rule); splits fixed by seed 0")
