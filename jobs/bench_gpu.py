"""The LSTM models on one accelerator: batching, precision, torch.compile, and whether data is the bottleneck.

    python jobs/bench_gpu.py                       # on a GPU -> results/perf/gpu.{md,csv}
    python jobs/bench_gpu.py --device cpu --rows 256 --steps 5 --out /tmp/perf   # a dry run without a GPU

Needs PyTorch only (no Ray): it runs the training step of ``seqlab.train`` on one device. Per model
and variant, two figures over the same batches:
- model step: forward, backward and AdamW on batches already on the device (the ceiling);
- end to end: the training loop's own path, collate from the ragged ids, host-to-device copy
  (pinned, non-blocking on a GPU), then the step. ``e2e_vs_step`` near 1: data is not the bottleneck.
Variants: length-bucketed batches (the job's), random batches padded to their longest, random
batches packed (``lstm`` only), bf16 autocast (GPU), ``torch.compile`` (GPU, ``--compile``).
GPU utilisation: the mean of ``nvidia-smi`` samples taken every 0.1 s during the end-to-end run.
The input data: built-in datasets prepared beforehand (``seqlab data prepare``) or prepared here.
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import torch

from seqlab.models import entry
from seqlab.tasks import make_task
from seqlab.tasks.batches import bucket_batches
from seqlab_tools import perf

LSTM_MODELS = ("lstm", "char-lstm", "lstm-ca", "smiles-rnn", "smiles-vae")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--models", default=",".join(LSTM_MODELS), help="comma-separated models")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda or cpu")
    p.add_argument("--rows", type=int, default=8192, help="training rows per model")
    p.add_argument("--max-len", type=int, default=256, help="tokens per text")
    p.add_argument("--batch-size", type=int, default=256, help="rows per step")
    p.add_argument("--steps", type=int, default=30, help="timed steps per figure (after 3 warm-up steps)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="also time torch.compile (default: on a GPU)")
    p.add_argument("--out", type=Path, default=Path("results/perf"), help="folder of the tables")
    args = p.parse_args(argv)
    args.models = perf.parse_models(p, args.models)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no GPU is visible to PyTorch here; use --device cpu for a dry run")
    args.compile = args.device == "cuda" if args.compile is None else args.compile
    return args


class Utilisation:
    """Mean GPU utilisation (%) from ``nvidia-smi`` samples while the block runs; None without one."""

    def __init__(self, device: torch.device):
        self.on = device.type == "cuda"
        self.samples: list[float] = []
        self.index = device.index or 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                      "-i", str(self.index)], capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return
            self._stop.wait(0.1)

    def __enter__(self):
        if self.on:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.on:
            self._stop.set()
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def time_steps(model, optimizer, task, batches, device, precision: str, *, feed) -> float:
    """Samples/s of ``len(batches)`` training steps; ``feed(idx)`` gives a batch on the device."""
    t0, seen = time.perf_counter(), 0
    for idx in batches:
        perf.train_step(model, optimizer, task, feed(idx), device=device, precision=precision)
        seen += len(idx)
    perf.sync(device)
    return seen / (time.perf_counter() - t0)


def bench_variant(prepared, model_cfg, args, device, *, batching: str, precision: str, compiled: bool) -> dict:
    task = make_task(prepared.task, len(prepared.labels))
    train = prepared.splits["train"]
    torch.manual_seed(0)
    model = perf.new_model(prepared, model_cfg, device)
    model.pack = batching == "packed"
    model.train()
    optimizer = perf.adamw(model, entry(model_cfg.model).lr, fused=device.type == "cuda")
    step_model = torch.compile(model) if compiled else model
    # bucketed: the job's batches; padded/packed: random batches (a chunk of one batch is not sorted)
    batches = bucket_batches(train.lengths, args.batch_size, seed=0, bucket=50 if batching == "bucketed" else 1)
    need = args.steps + 3
    batches = (batches * (need // max(len(batches), 1) + 1))[:need]
    warm, timed = batches[:3], batches[3:]
    pin = device.type == "cuda"

    def loader(idx):  # the training loop's path: collate, then copy to the device
        host = task.collate(train, idx)
        return {k: (v.pin_memory() if pin else v).to(device, non_blocking=True) for k, v in host.items()}

    staged = {id(idx): loader(idx) for idx in timed}
    perf.sync(device)
    time_steps(step_model, optimizer, task, warm, device, precision, feed=loader)  # compiles, warms caches
    pure = time_steps(step_model, optimizer, task, timed, device, precision, feed=lambda idx: staged[id(idx)])
    with Utilisation(device) as util:
        e2e = time_steps(step_model, optimizer, task, timed, device, precision, feed=loader)
    pad = sum(int(train.lengths[i].max()) * len(i) for i in timed)
    return {"batching": batching, "precision": precision, "compiled": compiled, "step_samples_per_s": pure,
            "e2e_samples_per_s": e2e, "e2e_vs_step": e2e / pure, "gpu_util_pct": util.mean,
            "padding_share": 1 - sum(int(train.lengths[i].sum()) for i in timed) / pad}


def variants(model: str, args) -> list[dict]:
    out = [{"batching": b, "precision": "fp32", "compiled": False} for b in ("bucketed", "padded")]
    if model == "lstm":
        out.append({"batching": "packed", "precision": "fp32", "compiled": False})
    if args.device == "cuda":
        out.append({"batching": "bucketed", "precision": "bf16", "compiled": False})
    if args.compile:
        out.append({"batching": "bucketed", "precision": "bf16" if args.device == "cuda" else "fp32", "compiled": True})
    return out


def main(argv=None) -> None:
    from seqlab.train.driver import prepare

    args = parse(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = False  # lengths vary per batch; autotuning each shape costs more than it gains
    prov = perf.record("bench_gpu.py", argv)
    rows = []
    for model in args.models:
        data_cfg, model_cfg = perf.bench_configs(model, rows=args.rows, max_len=args.max_len)
        prepared = prepare(data_cfg, model_cfg)
        for v in variants(model, args):
            print(f"[bench] {model} on {device}: {v}", flush=True)
            try:
                rows.append({"model": model, **bench_variant(prepared, model_cfg, args, device, **v)})
            except Exception as exc:  # noqa: BLE001  (torch.compile can fail on a model; say so in the table)
                rows.append({"model": model, **v, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"})
    table = pd.DataFrame(rows)
    stem = "gpu" if device.type == "cuda" else f"gpu_dry_run_{device.type}"
    md, _ = perf.write_table(
        table, args.out, stem, f"The LSTM models on {prov['hardware']}", prov,
        data=f"built-in datasets, {args.rows} training rows, max_len {args.max_len}, batches of {args.batch_size}",
        intro=(f"{args.steps} timed steps per figure after 3 warm-up steps. `step_samples_per_s`: batches already "
               "on the device; `e2e_samples_per_s`: collate + copy + step, as the training loop does; "
               "`padding_share`: share of the batch matrices that is padding; `gpu_util_pct`: mean nvidia-smi "
               "utilisation during the end-to-end steps."),
        notes=["Target: end to end >= 0.9x the model step's samples/s on a GPU."])
    print(table.to_string(index=False), flush=True)
    print(f"[bench] wrote {md}", flush=True)


if __name__ == "__main__":
    main()
