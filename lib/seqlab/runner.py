"""Driver side of a training run: prepare data once, build a ``TorchTrainer``, fit.

The train job calls :func:`fit` directly; every Tune trial calls the same :func:`fit` from its
driver function (Ray Train V2: a ``Tuner`` wraps a function that builds a ``TorchTrainer``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pandas as pd
import pyarrow.fs as pa_fs

from seqlab.config import DataConfig, ModelConfig, TrainConfig
from seqlab.data import PreparedData, open_fs, prepare
from seqlab.errors import SeqlabError
from seqlab.models import entry
from seqlab.tasks import encode, label_ids, make_task
from seqlab.tokenizer import CharTokenizer, WordTokenizer


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


def load_split(prepared: PreparedData, split: str, data_cfg: DataConfig) -> pd.DataFrame:
    """One split with ``--keep-labels`` and ``--limit`` applied."""
    df = prepared.split(split)
    keep = data_cfg.kept_labels()
    if keep:
        unknown = sorted(set(keep) - set(prepared.card["classes"]))
        if unknown:
            raise SeqlabError(f"--keep-labels: {unknown[0]!r} is not a label of {prepared.name}; labels are "
                              f"{', '.join(prepared.card['classes'])}")
        df = df[df["label"].isin(keep)].reset_index(drop=True)
    return df.head(data_cfg.limit) if data_cfg.limit else df


def build_tokenizer(kind: str, texts: pd.Series, data_cfg: DataConfig):
    if kind == "wordpiece":  # ships with the pre-trained model
        from seqlab.models.bert import WordPieceTokenizer

        return WordPieceTokenizer.pretrained(max_len=data_cfg.max_len)
    if kind == "char":  # whole texts; the generator task cuts them into windows of max_len
        return CharTokenizer.build(texts, min_freq=data_cfg.min_freq)
    return WordTokenizer.build(texts, max_size=data_cfg.vocab_size, min_freq=data_cfg.min_freq,
                               max_len=data_cfg.max_len, normalize=data_cfg.normalize)


def prepare_inputs(data_cfg: DataConfig, model_cfg: ModelConfig | None = None) -> dict:
    """Parquet splits -> tokenizer (train only) -> ragged id arrays for the workers (+ word vectors)."""
    model_cfg = model_cfg or ModelConfig()
    spec = entry(model_cfg.model)
    prepared = prepare_data(data_cfg)
    frames = {s: load_split(prepared, s, data_cfg) for s in ("train", "validation", "test")}
    labels = sorted(data_cfg.kept_labels() or prepared.card["classes"])
    task = make_task(spec.task, len(labels))
    tokenizer = build_tokenizer(spec.tokenizer, frames["train"]["text"], data_cfg)
    encoded = {split: dataclasses.asdict(encode(tokenizer, df["text"], label_ids(df["label"], labels), task,
                                                max_len=data_cfg.max_len))
               for split, df in frames.items()}
    card = {k: prepared.card[k] for k in ("name", "sha256", "counts", "split_rule")}
    card.update(root=str(prepared.root), limit=data_cfg.limit, keep_labels=data_cfg.kept_labels())
    inputs = {"data": encoded, "labels": labels, "task": spec.task, "tokenizer": tokenizer.to_dict(),
              "vocab_size": len(tokenizer), "card": card,
              "data_config": dataclasses.asdict(data_cfg), "embeddings": None}
    if model_cfg.embeddings != "random":  # ModelConfig checked that the model has an embedding layer
        from seqlab.embeddings import embedding_matrix

        dim = model_cfg.embed_dim or 300
        vectors, stats = embedding_matrix(tokenizer.vocab, model_cfg.embeddings,
                                          texts=frames["train"]["text"].tolist(), dim=dim, seed=data_cfg.split_seed)
        print(f"[seqlab] {stats['source']} vectors: {stats['found']} of {len(tokenizer) - 2} words "
              f"({stats['coverage']:.1%}), {stats['dim']} dimensions", flush=True)
        inputs["embeddings"], card["embeddings"] = vectors, stats
    return inputs


def signature(inputs: dict, model_cfg: ModelConfig) -> str:
    """What makes a checkpoint usable for resuming: model options, data settings, vocabulary."""
    vocab = hashlib.sha256(json.dumps(inputs["tokenizer"], sort_keys=True).encode()).hexdigest()
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

    task = make_task(inputs["task"], len(inputs["labels"]))

    kwargs = model_cfg.kwargs()
    if inputs["embeddings"] is not None:
        kwargs["embed_dim"] = inputs["embeddings"].shape[1]
    # build once on the driver so a bad model option fails here, in one line, not in every worker
    build_model(model_cfg.model, vocab_size=inputs["vocab_size"], num_classes=len(inputs["labels"]),
                **kwargs)
    data = {k: v for k, v in inputs["data"].items() if k != "test"}  # the test split stays on the driver
    name, storage_path = name or train_cfg.name, storage_path or train_cfg.resolved_storage()
    train_cfg = dataclasses.replace(train_cfg, lr=train_cfg.lr or entry(model_cfg.model).lr)
    run_path = f"{storage_path.rstrip('/')}/{name}"
    sig = signature(inputs, model_cfg)
    check_resumable(run_path, sig)
    tensorboard = train_cfg.tensorboard_dir or (None if "://" in run_path else f"{run_path}/tensorboard")
    loop_config = {
        "signature": sig,
        "task": inputs["task"],
        "data": ray.put(data),
        "embeddings": None if inputs["embeddings"] is None else ray.put(inputs["embeddings"]),
        "labels": inputs["labels"],
        "tokenizer": inputs["tokenizer"],
        "vocab_size": inputs["vocab_size"],
        "card": inputs["card"],
        "model": {"name": model_cfg.model, "kwargs": kwargs},
        "train": dataclasses.asdict(train_cfg),
        "tensorboard_dir": tensorboard,
        "max_len": inputs["data_config"]["max_len"],
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
                                               checkpoint_score_attribute=task.metric,
                                               checkpoint_score_order=task.mode),
            failure_config=FailureConfig(max_failures=train_cfg.max_failures),
            callbacks=callbacks,
        ),
    )
    return trainer.fit()


def best_checkpoint_path(result, task_name: str) -> str:
    """Path of the kept checkpoint with the best validation metric of the task."""
    task = make_task(task_name, 2)
    ranked = result.get_best_checkpoint(metric=task.metric, mode=task.mode)
    return (ranked or result.checkpoint).path
