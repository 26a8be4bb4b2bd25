"""Driver side of a training run: prepare data once, build a ``TorchTrainer``, fit.

The train job calls :func:`fit` directly; every Tune trial calls the same :func:`fit` from its
driver function (Ray Train V2: a ``Tuner`` wraps a function that builds a ``TorchTrainer``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pyarrow.fs as pa_fs

from seqlab.config import DataConfig, ModelConfig, TrainConfig
from seqlab.data import PreparedData, open_fs, prepare
from seqlab.errors import SeqlabError
from seqlab.tokenizer import WordTokenizer


def init_ray(**kwargs) -> None:
    """Join the cluster of ``ray job submit``/``RAY_ADDRESS``, or start a local instance."""
    import os

    import ray

    # Train V2 copies worker prints into its logger as well; keep one copy of our progress lines
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    if not ray.is_initialized():
        ray.init(log_to_driver=True, **kwargs)


def prepare_data(data_cfg: DataConfig) -> PreparedData:
    return prepare(data_cfg.dataset, text_column=data_cfg.text_column, label_column=data_cfg.label_column,
                   test_data=data_cfg.test_data, val_fraction=data_cfg.val_fraction, seed=data_cfg.split_seed)


def prepare_inputs(data_cfg: DataConfig) -> dict:
    """Parquet splits -> tokenizer (train only) -> ragged id arrays for the workers."""
    prepared = prepare_data(data_cfg)
    frames = {s: prepared.split(s) for s in ("train", "validation", "test")}
    if data_cfg.limit:
        frames = {s: df.head(data_cfg.limit) for s, df in frames.items()}
    labels = sorted(prepared.card["classes"])
    label_index = {lab: i for i, lab in enumerate(labels)}
    tokenizer = WordTokenizer.build(frames["train"]["text"], max_size=data_cfg.vocab_size,
                                    min_freq=data_cfg.min_freq, max_len=data_cfg.max_len)
    encoded = {}
    for split, df in frames.items():
        ids, offsets = tokenizer.encode_many(df["text"])
        # a label unseen in train (user data) maps to -1 and is dropped
        y = df["label"].map(label_index).fillna(-1).to_numpy(np.int64)
        keep = np.flatnonzero(y >= 0)
        if len(keep) < len(y):
            starts, ends = offsets[keep], offsets[keep + 1]
            ids = np.concatenate([ids[a:b] for a, b in zip(starts, ends)]).astype(np.int32)
            offsets = np.concatenate([[0], np.cumsum(ends - starts)])
        encoded[split] = {"ids": ids, "offsets": offsets, "labels": y[keep]}
    card = {k: prepared.card[k] for k in ("name", "sha256", "counts", "split_rule")}
    card["root"] = str(prepared.root)
    card["limit"] = data_cfg.limit
    return {"data": encoded, "labels": labels, "tokenizer": tokenizer.to_dict(), "card": card,
            "data_config": dataclasses.asdict(data_cfg)}


def signature(inputs: dict, model_cfg: ModelConfig) -> str:
    """What makes a checkpoint usable for resuming: model options, data settings, vocabulary."""
    vocab = hashlib.sha256("\n".join(inputs["tokenizer"]["vocab"]).encode()).hexdigest()
    blob = json.dumps({"model": dataclasses.asdict(model_cfg), "data": inputs["data_config"], "vocab": vocab},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def check_resumable(run_path: str, sig: str) -> None:
    """Refuse to resume a run whose latest checkpoint was made with other settings."""
    fs, path = open_fs(run_path)
    found = [i for i in fs.get_file_info(pa_fs.FileSelector(path, allow_not_found=True))
             if i.type == pa_fs.FileType.Directory and i.base_name.startswith("epoch_")]
    if not found:
        return
    latest = max(found, key=lambda i: i.base_name)
    try:
        with fs.open_input_stream(f"{latest.path}/meta.json") as f:
            old = json.loads(f.read()).get("signature")
    except (OSError, ValueError):
        return
    if old != sig:
        raise SeqlabError(f"run {run_path} was started with other model or data settings (signature {old}, now "
                          f"{sig}); keep its settings to resume it, or choose a new --name")


def fit(inputs: dict, model_cfg: ModelConfig, train_cfg: TrainConfig, *, name: str | None = None,
        storage_path: str | None = None, callbacks: list | None = None):
    """Train with Ray Train; returns the ``ray.train.Result``."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from seqlab.models import build_model
    from seqlab.train import train_loop_per_worker

    # build once on the driver so a bad model option fails here, in one line, not in every worker
    build_model(model_cfg.model, vocab_size=len(inputs["tokenizer"]["vocab"]), num_classes=len(inputs["labels"]),
                **model_cfg.kwargs())
    data = {k: v for k, v in inputs["data"].items() if k != "test"}  # the test split stays on the driver
    name, storage_path = name or train_cfg.name, storage_path or train_cfg.resolved_storage()
    sig = signature(inputs, model_cfg)
    check_resumable(f"{storage_path.rstrip('/')}/{name}", sig)
    loop_config = {
        "signature": sig,
        "data": ray.put(data),
        "labels": inputs["labels"],
        "tokenizer": inputs["tokenizer"],
        "card": inputs["card"],
        "model": {"name": model_cfg.model, "kwargs": model_cfg.kwargs()},
        "train": dataclasses.asdict(train_cfg),
    }
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if train_cfg.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=train_cfg.num_workers, use_gpu=train_cfg.use_gpu,
                                     resources_per_worker={"CPU": train_cfg.cpus_per_worker}),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=train_cfg.keep_checkpoints,
                                               checkpoint_score_attribute="val_macro_f1",
                                               checkpoint_score_order="max"),
            failure_config=FailureConfig(max_failures=train_cfg.max_failures),
            callbacks=callbacks,
        ),
    )
    return trainer.fit()


def best_checkpoint_path(result) -> str:
    """Path of the kept checkpoint with the highest validation macro-F1."""
    ranked = result.get_best_checkpoint(metric="val_macro_f1", mode="max")
    return (ranked or result.checkpoint).path
