"""What reading whole texts costs at inference: CFPB complaints through MiniLM cut at 128 word pieces
against MiniLM reading windows of the whole complaint, the word LSTM at 400 words against the whole
text, and the TF-IDF baseline; per request and per text of a batch, tokenizer included (the predictor
that Serve calls).

    python jobs/bench_long_texts.py            # -> results/perf/long_texts.{md,csv}

The models are untrained (the pre-trained MiniLM with a new head, a random LSTM, an unfitted TF-IDF
model on the real n-gram vocabulary): a forward pass costs the same whatever the weights learned.
Every setting is timed in the same process, interleaved, and the table gives medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqlab import checkpoint, provenance, report
from seqlab.config import DataConfig, ModelConfig
from seqlab.data.select import load_split, load_splits, prepare_data
from seqlab.models import build_model, entry
from seqlab.tasks.classify import TextClassifier
from seqlab.train.driver import build_tokenizer
from seqlab_tools.experiments import tokens_seen

# name -> (model, options, --max-len)
SETTINGS = {
    "minilm, first 128 pieces": ("minilm", {}, 128),
    "minilm, windows of 128 (every 94)": ("minilm", {"window": 128}, 2048),
    "minilm, windows of 256 (every 190)": ("minilm", {"window": 256}, 2048),
    "lstm, first 400 words": ("lstm", {"hidden": 168}, 400),
    "lstm, whole text": ("lstm", {"hidden": 168}, 4000),
    "tfidf-linear, whole text": ("tfidf-linear", {}, 400),
}


def save_untrained(model: str, options: dict, max_len: int, frames: dict, folder: Path) -> Path:
    """A checkpoint of the untrained model in ``folder`` (tokenizer built on the train texts)."""
    data_cfg, model_cfg = DataConfig(dataset="cfpb", max_len=max_len), ModelConfig(model=model, options=options)
    tok = build_tokenizer(entry(model).tokenizer, frames["train"]["text"], data_cfg, model_cfg)
    labels = sorted(set(frames["train"]["label"]))
    kwargs = {**options, **({"max_len": max_len} if entry(model).takes_max_len else {})}
    torch.manual_seed(0)
    net = build_model(model, vocab_size=len(tok), num_classes=len(labels), **kwargs)
    meta = {"task": "classify", "model": {"name": model, "kwargs": kwargs}, "labels": labels, "vocab_size": len(tok),
            "epoch": 0, "metrics": {}, "max_len": max_len, "data": {"name": "cfpb"}}
    checkpoint.save(folder, model=net, optimizer=None, meta=meta, tokenizer=tok.to_dict())
    return folder


def predictor(model: str, options: dict, max_len: int, frames: dict, folder: Path) -> TextClassifier:
    """A saved checkpoint of the untrained model, loaded as Serve loads one."""
    return TextClassifier(save_untrained(model, options, max_len, frames, folder))


def complaints() -> tuple[dict, pd.Series, str, float]:
    """CFPB's train frame (for the tokenizers), its test texts, a test complaint of the mean length of all
    complaints (the one request timed) and that mean."""
    cfg = DataConfig(dataset="cfpb")
    frames = load_splits(prepare_data(cfg), cfg, splits=("train",))
    test = load_split(prepare_data(cfg), "test", cfg)["text"]
    mean_chars = pd.concat([frames["train"]["text"], test]).str.len().mean()  # of every complaint
    return frames, test, test.iloc[int((test.str.len() - mean_chars).abs().argmin())], mean_chars


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=15, help="timings of one request per setting")
    p.add_argument("--batch", type=int, default=64, help="complaints per batch (per-text cost)")
    p.add_argument("--batch-repeats", type=int, default=3, help="timings of the batch per setting")
    p.add_argument("--out", type=Path, default=Path("results/perf"), help="folder of the table")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    frames, test, one, mean_chars = complaints()
    batch = test.sample(args.batch, random_state=0).tolist()
    print(f"[seqlab] one request: a complaint of {len(one)} characters (mean {mean_chars:.0f}); batch: {len(batch)} "
          f"complaints of {np.mean([len(t) for t in batch]):.0f} characters on average", flush=True)
    times: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = {name: predictor(*spec, frames, Path(tmp) / str(i)) for i, (name, spec) in enumerate(SETTINGS.items())}
        with torch.no_grad():
            for m in models.values():  # warm-up
                m.probabilities([one])
            for _ in range(args.repeats):
                for name, m in models.items():
                    times.setdefault(name, {"one": [], "batch": []})["one"].append(timed(lambda: m.probabilities([one])))
            for _ in range(args.batch_repeats):
                for name, m in models.items():
                    times[name]["batch"].append(timed(lambda: m.probabilities(batch, batch_size=args.batch)))
    base = statistics.median(times["minilm, first 128 pieces"]["one"])
    rows = []
    for name, (model, options, max_len) in SETTINGS.items():
        one_s, batch_s = statistics.median(times[name]["one"]), statistics.median(times[name]["batch"])
        rows.append({"setting": name, "tokens seen (CFPB test)": tokens_seen("cfpb", model, max_len),
                     "one request (ms)": 1000 * one_s, "vs minilm cut at 128": one_s / base,
                     "per text in a batch (ms)": 1000 * batch_s / len(batch)})
        print(f"[seqlab] {name}: {rows[-1]['one request (ms)']:.1f} ms a request", flush=True)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "long_texts.csv", index=False)
    prov = provenance.record(["python", "jobs/bench_long_texts.py"])
    (args.out / "long_texts.md").write_text(
        "# Reading whole complaints: what it costs per request\n\n"
        f"One request: a CFPB test complaint of the mean length of all complaints ({len(one)} characters), "
        "classified by the "
        "predictor that Serve calls (tokenizer + forward pass + softmax), median of "
        f"{args.repeats}; per text in a batch: {len(batch)} test complaints in one call, median of "
        f"{args.batch_repeats}. Windows of one text are scored in one batch. The models are untrained (cost does "
        "not depend on the weights); what windows gain in macro-F1 needs trained models (not yet in "
        "results/text).\n\n"
        + report.markdown_table(table, formats={"tokens seen (CFPB test)": "{:.0%}", "one request (ms)": "{:.1f}",
                                                "vs minilm cut at 128": "{:.2f}x", "per text in a batch (ms)": "{:.1f}"})
        + "\n\nHow it was made:\n" + provenance.markdown(prov) + "\n")
    print(f"[seqlab] table in {args.out}/long_texts.md", flush=True)


if __name__ == "__main__":
    main()
