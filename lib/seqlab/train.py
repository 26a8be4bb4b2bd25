"""The one training loop: runs in every Ray Train worker, for the train job and every Tune trial.

Data reaches the workers as ragged int32 arrays (ids + offsets) through the object store, and
each worker takes its own shard of every epoch (rank::world), in length-bucketed batches so that
padded batches carry little padding. What differs between models (batching, forward call, loss,
metrics) is the task's (:mod:`seqlab.tasks`); the loop is the same for all.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import torch
import torch.distributed as dist

from seqlab import checkpoint
from seqlab.models import build_model
from seqlab import tokenizer as tokenizers
from seqlab.tasks import EncodedSplit, decode_split, make_task


def bucket_batches(lengths: np.ndarray, batch_size: int, *, rank: int = 0, world: int = 1, seed: int = 0,
                   shuffle: bool = True, pad_to_equal: bool = True, bucket: int = 50) -> list[np.ndarray]:
    """Index batches of this rank's shard, similar lengths together.

    Every rank gets the same number of batches (DDP steps must match), so with ``pad_to_equal``
    the shard is topped up by repeating indices, as ``DistributedSampler`` does.
    """
    n = len(lengths)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    if pad_to_equal:
        per_rank = -(-n // world)
        order = np.resize(order, per_rank * world)
    shard = order[rank::world]
    batches = []
    chunk = batch_size * bucket
    for start in range(0, len(shard), chunk):
        block = shard[start : start + chunk]
        block = block[np.argsort(lengths[block], kind="stable")]
        batches += [block[i : i + batch_size] for i in range(0, len(block), batch_size)]
    if shuffle:
        np.random.default_rng(seed + 1).shuffle(batches)
    return batches


def autocast(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


@torch.no_grad()
def evaluate_stats(model: torch.nn.Module, split: EncodedSplit, task, *, batch_size: int = 256, rank: int = 0,
                   world: int = 1, device: torch.device = torch.device("cpu"), precision: str = "fp32"
                   ) -> torch.Tensor:
    """The task's summed stats over the whole split; each rank takes a shard and the sums are all-reduced."""
    model.eval()
    stats = torch.zeros(task.size, dtype=torch.float64, device=device)
    for idx in bucket_batches(split.lengths, batch_size, rank=rank, world=world, shuffle=False, pad_to_equal=False):
        batch = {k: v.to(device, non_blocking=True) for k, v in task.collate(split, idx).items()}
        with autocast(device, precision):
            out = task.forward(model, batch)
        stats += task.stats(out, batch)
    if world > 1 and dist.is_initialized():
        dist.all_reduce(stats)
    return stats


def evaluate(model: torch.nn.Module, split: EncodedSplit, task, **kwargs) -> dict[str, float]:
    """The task's metrics over the whole split (``kwargs`` as for :func:`evaluate_stats`)."""
    return task.summarise(evaluate_stats(model, split, task, **kwargs))


def better(a: float, b: float | None, mode: str) -> bool:
    return b is None or (a >= b if mode == "max" else a <= b)


def train_loop_per_worker(config: dict) -> None:
    """Ray Train worker entry point. ``config`` is built by :func:`seqlab.runner.fit`."""
    import ray
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    print(f"[seqlab] worker {rank}/{world} on node {ray.get_runtime_context().get_node_id()} "
          f"(pid {os.getpid()}, seqlab from {os.path.dirname(checkpoint.__file__)})", flush=True)
    train_cfg, model_cfg = config["train"], config["model"]
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", train_cfg["cpus_per_worker"]))))
    data = config["data"]
    data = ray.get(data) if isinstance(data, ray.ObjectRef) else data
    train_split, val_split = EncodedSplit(**data["train"]), EncodedSplit(**data["validation"])
    labels = config["labels"]

    torch.manual_seed(train_cfg["seed"])  # same initial weights on every rank; DDP broadcasts rank 0's anyway
    task = make_task(config["task"], len(labels))
    model = build_model(model_cfg["name"], vocab_size=config["vocab_size"], num_classes=len(labels),
                        **model_cfg["kwargs"])
    if config.get("embeddings") is not None:  # pre-trained word vectors, (vocab, embed_dim)
        vectors = config["embeddings"]
        vectors = ray.get(vectors) if isinstance(vectors, ray.ObjectRef) else vectors
        with torch.no_grad():
            model.embed.weight.copy_(torch.tensor(vectors))
    model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=train_cfg["lr"],
                                  weight_decay=train_cfg["weight_decay"])
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and train_cfg["precision"] == "fp16")
    raw_model = model.module if hasattr(model, "module") else model

    tokenizer, known = None, None
    if hasattr(task, "epoch_metrics") and train_cfg["sample_molecules"] > 0:
        tokenizer = tokenizers.from_dict(config["tokenizer"])
        known = set(decode_split(tokenizer, train_split))  # novelty is against the training molecules
    start_epoch, best, restarts, last = 0, {}, [], None
    with checkpoint.latest_complete(config["run_uri"], config["signature"]) as found:
        if found:  # a half-written checkpoint was refused, not loaded
            resume_uri, d, meta = found
            from safetensors.torch import load_file

            raw_model.load_state_dict(load_file(os.path.join(d, "model.safetensors"), device=str(device)))
            optimizer.load_state_dict(checkpoint.load_optimizer_state(d))
            start_epoch, best, last = meta["epoch"] + 1, meta.get("best", {}), meta.get("metrics")
            # the work done after this checkpoint was lost; its age bounds it (< 1 epoch + the restart)
            age = time.time() - meta.get("saved_at", time.time())
            restarts = [*meta.get("restarts", []), {"from_epoch": start_epoch, "checkpoint_age_s": round(age, 1)}]
    if found:
        if rank == 0:
            print(f"[seqlab] resuming from epoch {start_epoch + 1} (checkpoint of epoch {start_epoch}, written "
                  f"{age:.0f}s ago: {resume_uri})", flush=True)
        if start_epoch >= train_cfg["epochs"] and last:  # finished before; report its result again (Tune)
            ray.train.report({**last, "restarts": len(restarts)})
    writer = None
    if rank == 0 and config.get("tensorboard_dir"):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(config["tensorboard_dir"])

    for epoch in range(start_epoch, train_cfg["epochs"]):
        model.train()
        # dropout masks depend on (seed, epoch, rank) only, so a resumed run repeats an uninterrupted one
        torch.manual_seed(train_cfg["seed"] * 1000 + epoch + 7919 * rank)
        t0, seen, tokens_seen, loss_sum = time.perf_counter(), 0, 0, torch.zeros((), device=device)
        batches = bucket_batches(train_split.lengths, train_cfg["batch_size"], rank=rank, world=world,
                                 seed=train_cfg["seed"] * 1000 + epoch)
        for step, idx in enumerate(batches):
            batch = {k: v.to(device, non_blocking=True) for k, v in task.collate(train_split, idx).items()}
            with autocast(device, train_cfg["precision"]):
                out = task.forward(model, batch)
            loss = task.loss(out, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if train_cfg["grad_clip"] > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * len(idx)  # no host sync per step
            seen += len(idx)
            tokens_seen += int(train_split.lengths[idx].sum())  # host-side: no device sync
            if rank == 0 and (step + 1) % max(1, len(batches) // 4) == 0:
                print(f"[seqlab] epoch {epoch + 1}/{train_cfg['epochs']} step {step + 1}/{len(batches)} "
                      f"loss {loss.item():.4f}", flush=True)
        train_time = time.perf_counter() - t0
        val = evaluate(raw_model, val_split, task, rank=rank, world=world, device=device,
                       precision=train_cfg["precision"])
        if known is not None:  # molecule models: RDKit on sampled molecules (the same on every rank)
            val |= task.epoch_metrics(raw_model, tokenizer, known, n=train_cfg["sample_molecules"],
                                      seed=train_cfg["seed"] * 1000 + epoch)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / max(seen, 1),
            **{f"val_{k}": v for k, v in val.items()},
            "train_samples_per_s": seen * world / train_time,
            "train_tokens_per_s": tokens_seen * world / train_time,
            "epoch_time_s": train_time,
            "restarts": len(restarts),
        }
        if better(metrics[task.metric], best.get(task.metric), task.mode):
            best = {"epoch": epoch + 1, **{k: v for k, v in metrics.items() if k.startswith("val_")}}
        if rank == 0:
            shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("val_"))
            print(f"[seqlab] epoch {epoch + 1}: train_loss {metrics['train_loss']:.4f} {shown} "
                  f"({metrics['train_samples_per_s']:.0f} samples/s)", flush=True)
        if writer is not None:
            for k, v in metrics.items():
                if k != "epoch":
                    writer.add_scalar(k.replace("_", "/", 1) if k.startswith(("val_", "train_")) else k, v,
                                      epoch + 1)
            writer.flush()
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = None
            if rank == 0:
                meta = {"signature": config["signature"], "task": config["task"], "model": model_cfg,
                        "labels": labels, "vocab_size": config["vocab_size"], "epoch": epoch,
                        "metrics": metrics, "best": best, "train": train_cfg, "data": config["card"],
                        "max_len": config["max_len"], "restarts": restarts}
                checkpoint.save(tmp, model=raw_model, optimizer=optimizer, meta=meta, tokenizer=config["tokenizer"])
                ckpt = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=ckpt, checkpoint_dir_name=f"epoch_{epoch + 1:03d}")
    if writer is not None:
        writer.close()
