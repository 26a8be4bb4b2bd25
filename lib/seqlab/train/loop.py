"""The one training loop: runs in every Ray Train worker, for the train job and every Tune trial.

Data reaches the workers as ragged int32 arrays (ids + offsets) through the object store, and
each worker takes its own shard of every epoch (rank::world), in length-bucketed batches so that
padded batches carry little padding. What differs between models (batching, forward call, loss,
metrics) is the task's (:mod:`seqlab.tasks`); the loop is the same for all:

    state = resume(...)                      # the newest complete checkpoint, if any
    for epoch in ...:
        train_epoch(...)                     # one pass over this rank's shard
        metrics = ... evaluate(...) ...      # validation, summed over ranks
        save_epoch(...)                      # checkpoint + ray.train.report
        curves.log(...), curves.upload()     # rank 0: TensorBoard event files, copied to the run's storage
        tracker.log(...)                     # rank 0: MLflow, from a background thread
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass, field

import torch

from seqlab import checkpoint, tokenizers
from seqlab.config import ModelConfig, TrainConfig
from seqlab.models import build_model
from seqlab.tasks import Task, make_task
from seqlab.tasks.batches import autocast, bucket_batches, evaluate
from seqlab.tasks.encoding import EncodedSplit
from seqlab.train.curves import Curves
from seqlab.train.tracking import RunTracker, Tracking


@dataclass
class RunSpec:
    """Everything a Ray Train worker needs, built once by :func:`fit` (``train_loop_config={"run": ...}``)."""

    name: str  # the run's name: its folder under the storage path
    run_uri: str  # where its checkpoints go (a folder or s3:// prefix)
    signature: str  # what a checkpoint must match to be resumed from
    task: str
    labels: list[str]
    tokenizer: dict
    vocab_size: int
    card: dict
    max_len: int
    model: ModelConfig
    model_kwargs: dict  # the builder's keyword arguments: options + data sizes (saved in meta.json)
    train: TrainConfig
    data: object  # ray.ObjectRef of {"train": EncodedSplit, "validation": EncodedSplit}
    vectors: object = None  # ray.ObjectRef of the (vocab_size, dim) word vectors, or None
    tensorboard_dir: str | None = None  # where rank 0's event files go (a folder or s3:// prefix); None: nowhere
    # a Tune trial: on resuming, report the epochs done before again, so that ASHA (whose rungs Tune
    # does not save) sees every epoch of the trial at its own rung, as in an uninterrupted search
    replay: bool = False
    tracking: Tracking | None = None  # the MLflow store, experiment (and parent run) rank 0 logs to; None: none


@dataclass
class RunState:
    """Where a run stands: the epoch to start from, the best validation metrics so far, restarts."""

    start_epoch: int = 0
    best: dict = field(default_factory=dict)
    restarts: list = field(default_factory=list)
    history: list = field(default_factory=list)  # the metrics of every epoch so far


def better(a: float, b: float | None, mode: str) -> bool:
    return b is None or (a >= b if mode == "max" else a <= b)


def resume(spec: RunSpec, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
           rank: int) -> RunState:
    """Load the newest complete checkpoint of the run whose settings match (a half-written one is
    refused, not loaded); a fresh state when there is none."""
    with checkpoint.latest_complete(spec.run_uri, spec.signature) as found:
        if not found:
            return RunState()
        resume_uri, d, meta = found
        from safetensors.torch import load_file

        model.load_state_dict(load_file(os.path.join(d, "model.safetensors"), device=str(device)))
        optimizer.load_state_dict(checkpoint.load_optimizer_state(d))
    # the work done after this checkpoint was lost; its age bounds it (< 1 epoch + the restart)
    age = time.time() - meta.get("saved_at", time.time())
    state = RunState(start_epoch=meta["epoch"] + 1, best=meta.get("best", {}),
                     history=meta.get("history") or [meta["metrics"]],
                     restarts=[*meta.get("restarts", []),
                               {"from_epoch": meta["epoch"] + 1, "checkpoint_age_s": round(age, 1)}])
    if rank == 0:
        print(f"[seqlab] resuming from epoch {state.start_epoch + 1} (checkpoint of epoch {state.start_epoch}, "
              f"written {age:.0f}s ago: {resume_uri})", flush=True)
    return state


def train_epoch(model: torch.nn.Module, task: Task, split: EncodedSplit, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, *, epoch: int, spec: RunSpec, rank: int, world: int,
                device: torch.device) -> dict[str, float]:
    """One pass over this rank's shard of ``split``; returns the train loss and throughput."""
    cfg = spec.train
    model.train()
    # dropout masks depend on (seed, epoch, rank) only, so a resumed run repeats an uninterrupted one
    torch.manual_seed(cfg.seed * 1000 + epoch + 7919 * rank)
    t0, seen, tokens_seen, loss_sum = time.perf_counter(), 0, 0, torch.zeros((), device=device)
    batches = bucket_batches(split.lengths, cfg.batch_size, rank=rank, world=world, seed=cfg.seed * 1000 + epoch)
    for step, idx in enumerate(batches):
        batch = {k: v.to(device, non_blocking=True) for k, v in task.collate(split, idx).items()}
        with autocast(device, cfg.precision):
            out = task.forward(model, batch)
        loss = task.loss(out, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach() * len(idx)  # no host sync per step
        seen += len(idx)
        tokens_seen += int(split.lengths[idx].sum())  # host-side: no device sync
        if rank == 0 and (step + 1) % max(1, len(batches) // 4) == 0:
            print(f"[seqlab] epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{len(batches)} "
                  f"loss {loss.item():.4f}", flush=True)
    train_time = time.perf_counter() - t0
    return {"train_loss": float(loss_sum) / max(seen, 1), "train_samples_per_s": seen * world / train_time,
            "train_tokens_per_s": tokens_seen * world / train_time, "epoch_time_s": train_time}


def save_epoch(spec: RunSpec, epoch: int, metrics: dict, state: RunState, model: torch.nn.Module,
               optimizer: torch.optim.Optimizer, rank: int) -> None:
    """Rank 0 writes the epoch's checkpoint; every rank reports the metrics (Tune's ASHA reads them)."""
    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = None
        if rank == 0:
            meta = {"signature": spec.signature, "task": spec.task,
                    "model": {"name": spec.model.model, "kwargs": spec.model_kwargs},
                    "labels": spec.labels, "vocab_size": spec.vocab_size, "epoch": epoch,
                    "metrics": metrics, "best": state.best, "train": dataclasses.asdict(spec.train),
                    "data": spec.card, "max_len": spec.max_len, "restarts": state.restarts,
                    "history": state.history}
            checkpoint.save(tmp, model=model, optimizer=optimizer, meta=meta, tokenizer=spec.tokenizer)
            ckpt = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=ckpt, checkpoint_dir_name=f"epoch_{epoch + 1:03d}")


def train_loop_per_worker(config: dict) -> None:
    """Ray Train worker entry point; ``config["run"]`` is the :class:`RunSpec` of :func:`seqlab.train.driver.fit`."""
    import ray
    import ray.train
    import ray.train.torch

    spec: RunSpec = config["run"]
    cfg = spec.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    print(f"[seqlab] worker {rank}/{world} on node {ray.get_runtime_context().get_node_id()} "
          f"(pid {os.getpid()}, seqlab from {os.path.dirname(checkpoint.__file__)})", flush=True)
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", cfg.cpus_per_worker))))
    data = ray.get(spec.data)
    train_split, val_split = data["train"], data["validation"]

    torch.manual_seed(cfg.seed)  # same initial weights on every rank; DDP broadcasts rank 0's anyway
    task = make_task(spec.task, len(spec.labels))
    if cfg.class_weight == "balanced":
        task.weigh_classes(train_split.labels)
    vectors = {} if spec.vectors is None else {"vectors": ray.get(spec.vectors)}  # pre-trained word vectors
    raw_model = build_model(spec.model.model, vocab_size=spec.vocab_size, num_classes=len(spec.labels),
                            **spec.model_kwargs, **vectors)
    model = ray.train.torch.prepare_model(raw_model)
    device = ray.train.torch.get_device()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.precision == "fp16")
    sample = task.sampler(tokenizers.from_dict(spec.tokenizer), train_split, cfg.sample_molecules)

    state = resume(spec, raw_model, optimizer, device, rank)
    if spec.replay:  # the epochs done before, again, for ASHA's rungs
        for done in state.history:
            ray.train.report({**done, "restarts": len(state.restarts)})
    elif state.start_epoch >= cfg.epochs and state.history:  # finished before: its result again
        ray.train.report({**state.history[-1], "restarts": len(state.restarts)})
    curves = Curves(spec.tensorboard_dir) if rank == 0 and spec.tensorboard_dir else None
    tracker = RunTracker(spec.tracking, spec) if rank == 0 and spec.tracking else None

    started = time.perf_counter()
    for epoch in range(state.start_epoch, cfg.epochs):
        if getattr(raw_model, "fitted", False):  # the TF-IDF baseline: scikit-learn fits it in one pass
            trained = raw_model.fit_splits(train_split, val_split, seed=cfg.seed,
                                           log=lambda m: print(m, flush=True) if rank == 0 else None)
        else:
            trained = train_epoch(model, task, train_split, optimizer, scaler, epoch=epoch, spec=spec, rank=rank,
                                  world=world, device=device)
        val = evaluate(raw_model, val_split, task, rank=rank, world=world, device=device, precision=cfg.precision)
        if sample is not None:  # molecule models: RDKit on sampled molecules (the same on every rank)
            val |= sample(raw_model, cfg.seed * 1000 + epoch)
        metrics = {"epoch": epoch + 1, "train_loss": trained["train_loss"], **{f"val_{k}": v for k, v in val.items()},
                   **{k: v for k, v in trained.items() if k != "train_loss"}, "restarts": len(state.restarts),
                   # where this epoch's checkpoint lies: replayed epochs (and a trial that resumes a finished
                   # run) are reported without one, so Tune's own record of it can be missing
                   "checkpoint_dir": f"{spec.run_uri}/epoch_{epoch + 1:03d}"}
        state.history.append(metrics)
        if better(metrics[task.metric], state.best.get(task.metric), task.mode):
            state.best = {"epoch": epoch + 1, **{k: v for k, v in metrics.items() if k.startswith("val_")}}
        if rank == 0:
            shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("val_"))
            per_epoch = (time.perf_counter() - started) / (epoch + 1 - state.start_epoch)
            left = cfg.epochs - epoch - 1
            print(f"[seqlab] epoch {epoch + 1}/{cfg.epochs}: train_loss {metrics['train_loss']:.4f} {shown} "
                  f"({metrics['train_samples_per_s']:.0f} samples/s, {per_epoch:.0f}s an epoch"
                  f"{f'; about {per_epoch * left:.0f}s to go' if left else ''})", flush=True)
        if curves is not None:  # before the report: a trial that ASHA stops there keeps its last point
            curves.log(metrics, epoch)
        if tracker is not None:
            tracker.log(metrics, epoch, metrics["checkpoint_dir"] if state.best.get("epoch") == epoch + 1 else None)
            if spec.replay:  # a trial: ASHA may end this process at the report
                tracker.flush()
        save_epoch(spec, epoch, metrics, state, raw_model, optimizer, rank)
        if curves is not None:  # after the checkpoint: a slow or failing store delays the curves, not it
            curves.upload()
    if curves is not None:
        curves.close()
    if tracker is not None:
        tracker.close(finished=True)
