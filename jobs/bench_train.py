"""Training throughput of the Ray Train job against a plain PyTorch loop, and where the input pipeline
spends its time, for every model of the library.

    python jobs/bench_train.py                       # all models -> results/perf/train.{md,csv}, pipeline.{md,csv}
    python jobs/bench_train.py --models lstm,cnn --rows 512

For each model, in one process and one after the other: the plain loop (``seqlab.perf.plain_fit``,
all CPU threads), then the Ray Train job (``seqlab.runner.fit``) with 1 worker holding all CPUs and
with W workers sharing them (data-parallel, gloo). Same model, data, batches, seed and optimizer.
Throughput is the median over the epochs after the first, of the training steps only (validation
and checkpoints excluded); wall time is the whole run, Ray's start of the worker group included.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from seqlab.config import TrainConfig
from seqlab.data.select import load_split, prepare_data
from seqlab.models import MODELS, entry
from seqlab.train.driver import fit, init_ray, prepare
from seqlab_tools import perf

TRANSFORMERS = ("minilm", "sentence-minilm")  # ~50x the LSTMs' cost per row on CPU: a quarter of the rows


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated models (default: all)")
    p.add_argument("--rows", type=int, default=1024, help="rows per split (transformers: a quarter)")
    p.add_argument("--max-len", type=int, default=128, help="tokens per text")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (throughput: median after the first)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per step per worker")
    p.add_argument("--repeats", type=int, default=2, help="runs of each runner, in A B C / C B A order")
    p.add_argument("--workers", default="1,2", help="Ray Train worker counts to measure")
    p.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the run (split between the workers)")
    p.add_argument("--no-pipeline", action="store_true", help="skip the pipeline breakdown")
    p.add_argument("--out", type=Path, default=Path("results/perf"), help="folder of the tables")
    args = p.parse_args(argv)
    args.models = perf.parse_models(p, args.models)
    args.workers = [int(w) for w in args.workers.split(",")]
    if any(w < 1 or args.cpus % w for w in args.workers):
        p.error(f"--workers must divide --cpus ({args.cpus}) evenly, got {args.workers}")
    return args


def bench_model(model: str, args, storage: str) -> tuple[list[dict], dict | None]:
    rows_n = args.rows // 4 if model in TRANSFORMERS else args.rows
    data_cfg, model_cfg = perf.bench_configs(model, rows=rows_n, max_len=args.max_len)
    prepared = prepare(data_cfg, model_cfg)
    # every epoch's checkpoint kept: a Ray Train result lists the metrics of its kept checkpoints
    base = TrainConfig(name=f"perf-{model}", storage_path=storage, epochs=args.epochs, batch_size=args.batch_size,
                       num_workers=1, cpus_per_worker=args.cpus, sample_molecules=0, keep_checkpoints=args.epochs,
                       precision="fp32")
    n_train = len(prepared.splits["train"])
    runners = ["plain", *args.workers]
    epochs, walls = {r: [] for r in runners}, {r: [] for r in runners}
    for rep in range(args.repeats):
        # A B C, then C B A: drift of the machine during the run falls on all runners alike
        for runner in runners if rep % 2 == 0 else runners[::-1]:
            t0 = time.perf_counter()
            if runner == "plain":
                print(f"[bench] {model}: {n_train} training rows of {data_cfg.dataset}, plain PyTorch loop", flush=True)
                got = perf.plain_fit(prepared, model_cfg, base, threads=args.cpus)["epochs"]
            else:
                cfg = dataclasses.replace(base, name=f"perf-{model}-{runner}w-{rep}", num_workers=runner,
                                          cpus_per_worker=args.cpus // runner)
                print(f"[bench] {model}: Ray Train, {runner} worker(s) x {cfg.cpus_per_worker} CPU(s)", flush=True)
                got = fit(prepared, model_cfg, cfg).metrics_dataframe.sort_values("epoch").to_dict("records")
            walls[runner].append(time.perf_counter() - t0)
            epochs[runner] += got[1:] if len(got) > 1 else got  # the first epoch warms up
    out = []
    for runner in runners:
        sps = statistics.median(e["train_samples_per_s"] for e in epochs[runner])
        out.append({"model": model, "data": data_cfg.dataset, "rows": n_train,
                    "runner": "plain PyTorch" if runner == "plain" else "Ray Train",
                    "workers": 1 if runner == "plain" else runner,
                    "threads_per_worker": args.cpus if runner == "plain" else args.cpus // runner,
                    "samples_per_s": sps, "tokens_per_s": statistics.median(
                        e["train_tokens_per_s"] for e in epochs[runner]),
                    "vs_plain": sps / out[0]["samples_per_s"] if out else 1.0,
                    "wall_s": statistics.median(walls[runner]),
                    "wall_vs_plain": statistics.median(walls["plain"]) / statistics.median(walls[runner])})
    profile = None
    if not args.no_pipeline:
        frame = load_split(prepare_data(data_cfg, molecules=entry(model).task == "molecule"), "train", data_cfg)
        profile = {"model": model, **perf.profile_pipeline(prepared, frame, model_cfg, base, threads=args.cpus)}
    return out, profile


def main(argv=None) -> None:
    args = parse(argv)
    prov = perf.record("bench_train.py", argv)
    init_ray(num_cpus=args.cpus)
    storage = tempfile.mkdtemp(prefix="seqlab-bench-")  # fresh: a run of the same name would resume
    rows, profiles = [], []
    try:
        for model in args.models:
            r, p = bench_model(model, args, storage)
            rows += r
            if p:
                profiles.append(p)
            print(pd.DataFrame(r)[["model", "runner", "workers", "samples_per_s", "vs_plain", "wall_s"]]
                  .to_string(index=False), flush=True)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    data = (f"built-in datasets cut to {args.rows} rows per split ({args.rows // 4} for transformers), max_len "
            f"{args.max_len}: classifiers on cfpb, char-lstm on sentences2, entity models on bionlp-entities, "
            f"molecule models on moses")
    table = pd.DataFrame(rows)
    md, _ = perf.write_table(
        table, args.out, "train", "Training throughput: Ray Train against a plain PyTorch loop", prov, data=data,
        intro=(f"Same model, data, length-bucketed batches of {args.batch_size} rows per worker, seed and AdamW; "
               f"{args.epochs} epochs per run, {args.repeats} runs of each, in A B C / C B A order. `samples_per_s`: "
               "median over all runs' epochs 2+ of the training steps "
               "(validation and checkpoints excluded), summed over workers. `vs_plain`: that against the plain "
               "loop's. `wall_s`: the whole run (Ray: from `fit()` to its return, starting the worker group, "
               "validating and checkpointing every epoch), median of the runs; `wall_vs_plain`: plain wall / this wall."),
        notes=["Target: Ray Train with 1 worker >= 0.95x the plain loop's samples/s.",
               "2 workers share the same CPUs as 1 worker (1 thread each, gloo all-reduce each step): on a "
               "machine with few cores this measures DDP's cost, not a speed-up."])
    print(f"[bench] wrote {md}", flush=True)
    if profiles:
        md, _ = perf.write_table(
            pd.DataFrame(profiles), args.out, "pipeline", "Where a training step's time goes", prov, data=data,
            intro=("Milliseconds per batch of each stage, each timed alone with a device sync, over up to 40 "
                   "length-bucketed batches (the first not counted). `tokenise`: the batch's rows from text to ids "
                   "(the job does this once, before training; the figure is its cost if done per step); "
                   "`collate`: ids to padded tensors; `to_device`: host to device copy; `step`: forward, backward "
                   "and AdamW. `*_share`: of the four together."))
        print(f"[bench] wrote {md}", flush=True)


if __name__ == "__main__":
    main()
