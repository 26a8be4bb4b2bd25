"""Unicode words against the ASCII splitting they replace: results/text/unicode_words.md.

    python jobs/unicode_words.py --before BEFORE_RESULTS --before-commit REV --after AFTER_RESULTS

1. For every built-in dataset a word tokenizer reads: how many texts (all splits) have a character
   outside ASCII, and how many split into other words now.
2. The text rows whose words can change, trained at the commit before Unicode words and at this one
   (``jobs/text_results.py --results-dir ...`` run on each, same seeds): test accuracy and macro-F1 side
   by side. Rows whose texts all split the same way have the same ids, so the same figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqlab.data.prepare import prepare
from seqlab.provenance import markdown, record
from seqlab.tokenizers.words import split_words

ONLY = ("sentences2-lstm,sentences2-cnn,sentences5-lstm,sentences5-cnn,drugs-rating-lstm,drugs-rating-cnn,"
        "drugs-condition-lstm,drugs-condition-cnn")
DATASETS = ("cfpb", "sentences2", "sentences5", "drugs-rating", "drugs-condition", "bionlp-entities",
            "bionlp-triggers", "drugs-target")


def splitting(name: str, normalize: str) -> dict:
    prepared = prepare(name)
    texts = [t for split in ("train", "validation", "test") for t in prepared.split(split)["text"].tolist()]
    changed = sum(split_words(t, normalize) != split_words(t, normalize, scheme="ascii") for t in texts)
    return {"texts": len(texts), "non_ascii": sum(not t.isascii() for t in texts), "split_differently": changed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="results folder of jobs/text_results.py at the commit before")
    p.add_argument("--before-commit", required=True, help="that commit")
    p.add_argument("--after", required=True, help="results folder of jobs/text_results.py at this commit")
    p.add_argument("--out", default="results/text/unicode_words.md")
    args = p.parse_args()
    lines = ["# Unicode words against the ASCII splitting they replace", "",
             "## Texts that split into other words (train + validation + test)", "",
             "| dataset | normalize | texts | with non-ASCII characters | split differently |", "|---|---|---|---|---|"]
    for name in DATASETS:
        for normalize in ("default", "seed001") if name.startswith("sentences") else ("default",):
            s = splitting(name, normalize)
            lines.append(f"| {name} | {normalize} | {s['texts']} | {s['non_ascii']} | {s['split_differently']} "
                         f"({s['split_differently'] / s['texts']:.2%}) |")
    lines += ["", "## Test figures before and after (same seeds, same commands)", "",
              "| run | accuracy before | accuracy after | macro-F1 before | macro-F1 after |", "|---|---|---|---|---|"]
    for path in sorted(Path(args.before, "runs").glob("*.json")):
        before = json.loads(path.read_text())["test"]
        after = json.loads((Path(args.after) / "runs" / path.name).read_text())["test"]
        lines.append(f"| {path.stem} | {before['accuracy']:.3f} | {after['accuracy']:.3f} | "
                     f"{before['macro_f1']:.3f} | {after['macro_f1']:.3f} |")
    lines += ["", f"Before: commit `{args.before_commit}` (ASCII words); after: this table's commit. Each side ran "
              f"`python jobs/text_results.py --only {ONLY} --results-dir <folder>`: the runs of "
              "`configs/experiments/text.yaml` whose words can change (MiniLM's WordPiece did not; CFPB's texts "
              "all split as before, so its ids and figures are the same).", "",
              "How it was made:", markdown(record(["python", "jobs/unicode_words.py", *sys.argv[1:]]))]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
