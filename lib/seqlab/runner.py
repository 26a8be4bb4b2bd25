"""Driver side of a training run: prepare data once, build a ``TorchTrainer``, fit.

The train job calls :func:`fit` directly; every Tune trial calls the same :func:`fit` from its
driver function (Ray Train V2: a ``Tuner`` wraps a function that builds a ``TorchTrainer``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pandas as pd

from seqlab.config import DataConfig, ModelConfig, TrainConfig
from seqlab.data import PreparedData, prepare
from seqlab.errors import SeqlabError
from seqlab.models import MODELS, entry
from seqlab.checkpoint import epoch_folders
from seqlab.storage import ray_storage, read_bytes, to_uri
from seqlab.tasks import label_ids, make_task
from seqlab.tokenizer import CharTokenizer, WordTokenizer


def init_ray(**kwargs) -> None:
    """Join the cluster of ``ray job submit``/``RAY_ADDRESS``, or start a local instance."""
    import os

    import ray

    # Train V2 copies worker prints into its logger as well; keep one copy of our progress lines
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    # Ray starts workers at nice 15, below its own bookkeeping processes; on a machine with few cores
    # those then preempt a training worker's threads mid-step (0.84x the plain loop's throughput on
    # 2 cores, 0.94x at nice 0: results/perf/train.md). Applies to the instance started here.
    os.environ.setdefault("RAY_worker_niceness", "0")
    if not ray.is_initialized():
        ray.init(log_to_driver=True, **kwargs)


def prepare_data(data_cfg: DataConfig, *, molecules: bool = False) -> PreparedData:
    """The Parquet splits; ``molecules`` reads SMILES (a user file needs no label column)."""
    return prepare(data_cfg.dataset, text_column=data_cfg.text_column, label_column=data_cfg.label_column,
                   test_data=data_cfg.test_data, val_fraction=data_cfg.val_fraction, seed=data_cfg.split_seed,
                   molecules=molecules)


def load_splits(prepared: PreparedData, data_cfg: DataConfig, splits=("train", "validation", "test")
                ) -> dict[str, pd.DataFrame]:
    """The splits with ``--fold``, the domains, ``--keep-labels`` and ``--limit`` applied."""
    frames = select_rows(prepared, data_cfg) if _regrouped(data_cfg) else {s: prepared.split(s) for s in splits}
    keep = data_cfg.kept_labels()
    if keep:
        unknown = sorted(set(keep) - set(prepared.card["classes"]))
        if unknown:
            raise SeqlabError(f"--keep-labels: {unknown[0]!r} is not a label of {prepared.name}; labels are "
                              f"{', '.join(prepared.card['classes'])}")
    out = {}
    for split in splits:
        df = frames[split]
        if keep:
            df = df[df["label"].isin(keep)].reset_index(drop=True)
        out[split] = df.head(data_cfg.limit) if data_cfg.limit else df
    return out


def load_split(prepared: PreparedData, split: str, data_cfg: DataConfig) -> pd.DataFrame:
    """One split, as :func:`load_splits` gives it."""
    return load_splits(prepared, data_cfg, (split,))[split]


def _regrouped(data_cfg: DataConfig) -> bool:
    return data_cfg.fold is not None or bool(data_cfg.train_domain or data_cfg.test_domain)


def select_rows(prepared: PreparedData, data_cfg: DataConfig) -> dict[str, pd.DataFrame]:
    """Train/validation/test for ``--fold`` and ``--train-domain``/``--test-domain``.

    All rows are pooled; the test rows are fold ``k`` (of the test domain), the training rows the
    other folds (of the train domain), so a document never sits on both sides. Without a fold,
    two different domains are trained and tested on whole. Validation is a stratified share of
    the training rows.
    """
    from seqlab.data import stratified_split

    rows = pd.concat([prepared.split(s) for s in ("train", "validation", "test")], ignore_index=True)
    needed = (["fold"] if data_cfg.fold is not None else []) + (
        ["domain"] if data_cfg.train_domain or data_cfg.test_domain else [])
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise SeqlabError(f"{prepared.name} has no {missing[0]!r} column, which "
                          f"{'--fold' if missing[0] == 'fold' else '--train-domain/--test-domain'} needs "
                          f"(entity datasets and mention tables have one)")
    train_pool, test_pool = rows, rows
    for pool_name, value in (("train", data_cfg.train_domain), ("test", data_cfg.test_domain)):
        if value is None:
            continue
        domains = sorted(rows["domain"].astype(str).unique())
        if value not in domains:
            raise SeqlabError(f"--{pool_name}-domain {value!r} is not a domain of {prepared.name}; domains are "
                              f"{', '.join(domains)}")
        chosen = rows[rows["domain"].astype(str) == value]
        train_pool, test_pool = (chosen, test_pool) if pool_name == "train" else (train_pool, chosen)
    if data_cfg.fold is not None:
        test = test_pool[test_pool["fold"] == data_cfg.fold]
        train_pool = train_pool[train_pool["fold"] != data_cfg.fold]
    elif not (data_cfg.train_domain and data_cfg.test_domain):
        raise SeqlabError("give both --train-domain and --test-domain (two corpora), or --fold (0-4) too, so that "
                          "training and test rows don't overlap")
    elif data_cfg.train_domain == data_cfg.test_domain:
        raise SeqlabError("to train and test within one domain give --fold too (0-4), so that they don't overlap")
    else:
        test = test_pool
    train_pool = train_pool.reset_index(drop=True)
    val = stratified_split(train_pool["label"].to_numpy(), data_cfg.val_fraction, data_cfg.split_seed)
    return {"train": train_pool[~val].reset_index(drop=True), "validation": train_pool[val].reset_index(drop=True),
            "test": test.reset_index(drop=True)}


def check_task(task: str, model: str, prepared: PreparedData) -> None:
    """Entity models need mention spans; text models would ignore them, so they are refused there.
    Molecule models need SMILES, and text models are refused on them."""
    molecules = prepared.card.get("kind") == "molecules"
    if (task == "molecule") != molecules:
        if molecules:
            usable = ", ".join(m for m, e in MODELS.items() if e.task == "molecule")
            raise SeqlabError(f"{prepared.name} holds molecules (SMILES); choose a molecule model: {usable}")
        raise SeqlabError(f"model {model!r} generates molecules, but {prepared.name} is text; use --dataset moses, "
                          f"moses-scaffolds or a file of SMILES (a 'smiles' column, or .smi)")
    mentions = {"start", "end"} <= set(prepared.card.get("extra_columns", []))
    if task == "entity" and not mentions:
        raise SeqlabError(f"model {model!r} classifies entity mentions, but {prepared.name} has no start/end "
                          f"columns; use an entity dataset (bionlp-entities, bionlp-triggers, drugs-target), a "
                          f"brat folder, or a table with text, start, end, label")
    if task != "entity" and mentions:
        entity_models = ", ".join(m for m, e in MODELS.items() if e.task == "entity")
        raise SeqlabError(f"{prepared.name} holds entity mentions; choose an entity model: {entity_models}")


def build_tokenizer(kind: str, texts: pd.Series, data_cfg: DataConfig):
    if kind == "wordpiece":  # ships with the pre-trained model
        from seqlab.models.bert import WordPieceTokenizer

        return WordPieceTokenizer.pretrained(max_len=data_cfg.max_len)
    if kind == "char":  # whole texts; the generator task cuts them into windows of max_len
        return CharTokenizer.build(texts, min_freq=data_cfg.min_freq)
    if kind == "smiles":  # every token of the training molecules: a rare atom is still an atom
        from seqlab.smiles import SmilesTokenizer

        return SmilesTokenizer.build(texts, max_len=data_cfg.max_len)
    return WordTokenizer.build(texts, max_size=data_cfg.vocab_size, min_freq=data_cfg.min_freq,
                               max_len=data_cfg.max_len, normalize=data_cfg.normalize)


def prepare_inputs(data_cfg: DataConfig, model_cfg: ModelConfig | None = None) -> dict:
    """Parquet splits -> tokenizer (train only) -> ragged id arrays for the workers (+ word vectors)."""
    model_cfg = model_cfg or ModelConfig()
    spec = entry(model_cfg.model)
    prepared = prepare_data(data_cfg, molecules=spec.task == "molecule")
    check_task(spec.task, model_cfg.model, prepared)
    frames = load_splits(prepared, data_cfg)
    # a model learns the labels its training rows have (cross-domain: its own domain's)
    cross_domain = bool(data_cfg.train_domain or data_cfg.test_domain)
    labels = sorted(data_cfg.kept_labels() or (set(frames["train"]["label"]) if cross_domain
                                               else prepared.card["classes"]))
    task = make_task(spec.task, len(labels))
    tokenizer = build_tokenizer(spec.tokenizer, frames["train"]["text"], data_cfg)
    card = {k: prepared.card[k] for k in ("name", "sha256", "counts", "split_rule")}
    card.update(root=str(prepared.root), limit=data_cfg.limit, keep_labels=data_cfg.kept_labels(),
                fold=data_cfg.fold, train_domain=data_cfg.train_domain, test_domain=data_cfg.test_domain)
    features = {s: None for s in frames}
    if spec.features:
        from seqlab.features import FEATURE_NAMES, mention_features

        raw = {s: mention_features(df["text"].tolist(), df["start"].to_numpy(), df["end"].to_numpy())
               for s, df in frames.items()}
        # standardised with the training rows' statistics, kept in the checkpoint for serving
        mean, std = raw["train"].mean(0), raw["train"].std(0) + 1e-6
        features = {s: (x - mean) / std for s, x in raw.items()}
        card["features"] = {"names": list(FEATURE_NAMES), "mean": mean.tolist(), "std": std.tolist()}
    encoded = {split: dataclasses.asdict(task.encode_frame(tokenizer, df, label_ids(df["label"], labels),
                                                           max_len=data_cfg.max_len, features=features[split]))
               for split, df in frames.items()}
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
    found = epoch_folders(run_path)
    if not found:
        return
    try:
        old = json.loads(read_bytes(f"{found[-1]}/meta.json")).get("signature")
    except (OSError, ValueError):
        return
    if old != sig:
        raise SeqlabError(f"run {run_path} was started with other model or data settings (signature {old}, now "
                          f"{sig}); keep its settings to resume it, or choose a new --name")


def model_kwargs(inputs: dict, model_cfg: ModelConfig) -> dict:
    """The model's keyword arguments: its options plus the sizes the data sets."""
    kwargs = model_cfg.kwargs()
    if entry(model_cfg.model).takes_max_len:  # generators stop there; the autoencoder's width
        kwargs["max_len"] = inputs["data_config"]["max_len"]
    if inputs["embeddings"] is not None:
        kwargs["embed_dim"] = inputs["embeddings"].shape[1]
    return kwargs


def fit(inputs: dict, model_cfg: ModelConfig, train_cfg: TrainConfig, *, name: str | None = None,
        storage_path: str | None = None, callbacks: list | None = None, metric: tuple[str, str] | None = None):
    """Train with Ray Train; returns the ``ray.train.Result``.

    ``metric`` (name, "min"/"max") ranks the kept checkpoints; default: the task's validation metric.
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from seqlab.models import build_model
    from seqlab.train import train_loop_per_worker

    task = make_task(inputs["task"], len(inputs["labels"]))
    score, order = metric or (task.metric, task.mode)

    kwargs = model_kwargs(inputs, model_cfg)
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
        "run_uri": run_path,
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
            **ray_storage(storage_path),
            checkpoint_config=CheckpointConfig(num_to_keep=train_cfg.keep_checkpoints,
                                               checkpoint_score_attribute=score, checkpoint_score_order=order),
            failure_config=FailureConfig(max_failures=train_cfg.max_failures),
            callbacks=callbacks,
        ),
    )
    from ray.train import TrainingFailedError

    try:
        return trainer.fit()
    except TrainingFailedError as exc:  # after max_failures restarts; the checkpoints made so far are kept
        cause = str(exc).strip().splitlines()
        raise SeqlabError(
            f"run {name} failed after {train_cfg.max_failures} restart(s): {cause[-1] if cause else type(exc).__name__}"
            f". Its complete checkpoints are kept in {run_path}; start the same --name again to resume from the "
            f"latest (raise --max-failures to ride out more failures)") from exc


def best_checkpoint_path(result, task_name: str) -> str:
    """Path of the kept checkpoint with the best validation metric of the task."""
    task = make_task(task_name, 2)
    ckpt = result.get_best_checkpoint(metric=task.metric, mode=task.mode) or result.checkpoint
    return to_uri(ckpt.path, ckpt.filesystem)
