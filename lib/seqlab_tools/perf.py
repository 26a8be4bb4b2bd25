"""What the benchmarks of ``jobs/bench_*.py`` share: the data each model is measured on, the plain
PyTorch loop Ray Train is measured against, the timing of the data pipeline's stages, and the
Markdown + CSV tables of ``results/perf/``.

The plain loop is what a user would write without Ray: the same model, data, batches and
optimizer as :func:`seqlab.train.loop.train_loop_per_worker`, with nothing around it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqlab.config import DataConfig, ModelConfig, TrainConfig
from seqlab.models import MODELS, build_model, entry
from seqlab.tasks import make_task
from seqlab.train.driver import Prepared, model_kwargs

# the data each task's models are measured on (built-in datasets, cut to --rows rows per split)
TASK_DATA = {"classify": "cfpb", "generate": "sentences2", "entity": "bionlp-entities", "molecule": "moses"}


def bench_configs(model: str, *, rows: int, max_len: int, **model_options) -> tuple[DataConfig, ModelConfig]:
    task = entry(model).task
    # SMILES are short; a molecule model's --max-len must hold the longest molecule
    data_cfg = DataConfig(dataset=TASK_DATA[task], limit=rows, max_len=max(max_len, 100) if task == "molecule"
                          else max_len)
    return data_cfg, ModelConfig(model=model, options=model_options)


def record(script: str, argv: list[str] | None) -> dict:
    """Provenance of a benchmark run: ``python jobs/<script> <its arguments>``, commit, hardware, versions."""
    import sys

    from seqlab import provenance

    return provenance.record(["python", f"jobs/{script}", *(sys.argv[1:] if argv is None else argv)])


def parse_models(parser, text: str) -> list[str]:
    """``--models`` (comma-separated) checked against the registry; an unknown one ends with a usage error."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        parser.error(f"unknown model {unknown[0]!r}; models: {', '.join(MODELS)}" if unknown else "--models is empty")
    return models


def new_model(prepared: Prepared, model_cfg: ModelConfig, device: torch.device) -> torch.nn.Module:
    """The model :func:`seqlab.train.driver.fit` trains, with the same initial weights (seeded by the caller)."""
    vectors = {} if prepared.embeddings is None else {"vectors": prepared.embeddings}
    model = build_model(model_cfg.model, vocab_size=prepared.vocab_size, num_classes=len(prepared.labels),
                        **model_kwargs(prepared, model_cfg), **vectors)
    return model.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def adamw(model: torch.nn.Module, lr: float, **kwargs) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, as the training loop builds it."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, **kwargs)


def train_step(model, optimizer, task, batch: dict, *, grad_clip: float = 0.0,
               device: torch.device = torch.device("cpu"), precision: str = "fp32") -> torch.Tensor:
    """One training step as the job takes it, without DDP and loss scaling; returns the loss."""
    from seqlab.tasks.batches import autocast

    with autocast(device, precision):
        out = task.forward(model, batch)
    loss = task.loss(out, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


def plain_fit(prepared: Prepared, model_cfg: ModelConfig, train_cfg: TrainConfig, *, threads: int,
              device: torch.device = torch.device("cpu")) -> dict:
    """Train as a plain PyTorch loop would; per-epoch throughput of the training steps and the run's wall time."""
    from seqlab.tasks.batches import bucket_batches, evaluate

    torch.set_num_threads(threads)
    t_run = time.perf_counter()
    task = make_task(prepared.task, len(prepared.labels))
    train, val = prepared.splits["train"], prepared.splits["validation"]
    torch.manual_seed(train_cfg.seed)
    model = new_model(prepared, model_cfg, device)
    optimizer = adamw(model, train_cfg.lr or entry(model_cfg.model).lr, weight_decay=train_cfg.weight_decay)
    epochs = []
    for epoch in range(train_cfg.epochs):
        model.train()
        torch.manual_seed(train_cfg.seed * 1000 + epoch)
        batches = bucket_batches(train.lengths, train_cfg.batch_size, seed=train_cfg.seed * 1000 + epoch)
        t0, seen, tokens = time.perf_counter(), 0, 0
        for idx in batches:
            batch = {k: v.to(device, non_blocking=True) for k, v in task.collate(train, idx).items()}
            train_step(model, optimizer, task, batch, grad_clip=train_cfg.grad_clip, device=device)
            seen += len(idx)
            tokens += int(train.lengths[idx].sum())
        sync(device)
        dt = time.perf_counter() - t0
        evaluate(model, val, task, device=device)  # the job validates every epoch too
        epochs.append({"epoch": epoch + 1, "train_samples_per_s": seen / dt, "train_tokens_per_s": tokens / dt,
                       "epoch_time_s": dt})
    return {"epochs": epochs, "wall_s": time.perf_counter() - t_run}


def profile_pipeline(prepared: Prepared, frame: pd.DataFrame, model_cfg: ModelConfig, train_cfg: TrainConfig, *,
                     threads: int, device: torch.device = torch.device("cpu"), max_batches: int = 40) -> dict:
    """Milliseconds per batch of each stage of the input pipeline and of the model step.

    tokenise: text -> ids of one batch's worth of rows (done once, before training, in the job);
    collate: ids -> padded tensors; to_device: host -> device copy; step: forward, backward, optimizer.
    Each stage is timed on its own (with a device sync), over the same length-bucketed batches.
    """
    from seqlab import tokenizers
    from seqlab.tasks.batches import bucket_batches
    from seqlab.tasks.encoding import label_ids

    torch.set_num_threads(threads)
    task = make_task(prepared.task, len(prepared.labels))
    train = prepared.splits["train"]
    tok = tokenizers.from_dict(prepared.tokenizer)
    labels = label_ids(frame["label"], prepared.labels) if "label" in frame else np.zeros(len(frame), np.int64)
    t0 = time.perf_counter()
    task.encode_frame(tok, frame, labels, max_len=prepared.data_config.max_len)
    per_row = (time.perf_counter() - t0) / max(len(frame), 1)

    torch.manual_seed(train_cfg.seed)
    model = new_model(prepared, model_cfg, device)
    model.train()
    optimizer = adamw(model, train_cfg.lr or entry(model_cfg.model).lr)
    batches = bucket_batches(train.lengths, train_cfg.batch_size, seed=train_cfg.seed)[:max_batches]
    spent = {"collate": 0.0, "to_device": 0.0, "step": 0.0}
    rows = 0
    for i, idx in enumerate(batches):
        t0 = time.perf_counter()
        host = task.collate(train, idx)
        t1 = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) for k, v in host.items()}
        sync(device)
        t2 = time.perf_counter()
        train_step(model, optimizer, task, batch, device=device)
        sync(device)
        t3 = time.perf_counter()
        if i == 0:  # warm-up batch: not counted
            continue
        rows += len(idx)
        spent["collate"] += t1 - t0
        spent["to_device"] += t2 - t1
        spent["step"] += t3 - t2
    n = max(len(batches) - 1, 1)
    per_batch = rows / n
    out = {"tokenise_ms": per_row * per_batch * 1e3, **{f"{k}_ms": v / n * 1e3 for k, v in spent.items()}}
    total = sum(out.values())
    return out | {f"{k[:-3]}_share": v / total for k, v in out.items()} | {"batch_rows": per_batch}


def search_overhead(reports: pd.DataFrame, wall_s: float, concurrent: int) -> dict:
    """Wall time against the trials' summed time / parallelism. A trial's time is Tune's
    ``time_total_s`` at its last report: from its start to its last epoch (its shutdown is not counted,
    so the overhead is, if anything, overstated)."""
    per_trial = reports.groupby("trial")["time_total_s"].max()
    ideal = per_trial.sum() / concurrent
    return {"trials": len(per_trial), "epochs_run": len(reports), "wall_s": wall_s,
            "trial_time_sum_s": per_trial.sum(), "ideal_s": ideal, "overhead": wall_s / ideal}


def epochs_to_reach(reports: pd.DataFrame, target: float, metric: str, mode: str) -> int | None:
    """Epochs run (all trials, in report order) when the best metric so far first reached ``target``."""
    ordered = reports.sort_values("timestamp", kind="stable").reset_index(drop=True)
    hit = ordered[metric] >= target if mode == "max" else ordered[metric] <= target
    return int(hit.idxmax()) + 1 if hit.any() else None


def write_table(frame: pd.DataFrame, out_dir: Path, stem: str, title: str, prov: dict, *, intro: str = "",
                notes: list[str] = (), data: str = "") -> tuple[Path, Path]:
    """``<stem>.csv`` (the figures) and ``<stem>.md`` (the same table with how it was made)."""
    from seqlab.provenance import markdown
    from seqlab.report import markdown_table

    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    frame.to_csv(csv, index=False)
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    lines += [markdown(prov), *([f"- Data: {data}"] if data else []), "",
              markdown_table(frame, floats="{:.3g}"), ""]
    lines += [f"- {n}" for n in notes]
    md.write_text("\n".join(lines).rstrip() + "\n")
    return md, csv
