"""Driver side of a training run: prepare data once, build a ``TorchTrainer``, fit.

The train job calls :func:`fit` directly; every Tune trial calls the same :func:`fit` from its
driver function (Ray Train V2: a ``Tuner`` wraps a function that builds a ``TorchTrainer``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqlab.checkpoint import epoch_folders, local_dir
from seqlab.config import DataConfig, ModelConfig, TrainConfig, identity_of
from seqlab.data.prepare import PreparedData
from seqlab.data.select import load_split, load_splits, prepare_data
from seqlab.errors import SeqlabError
from seqlab.models import MODELS, build_model, entry
from seqlab.storage import join, ray_storage, read_bytes, to_uri
from seqlab.tasks import load_predictor, make_task, task_class
from seqlab.tasks.encoding import EncodedSplit, label_ids
from seqlab.train.loop import RunSpec, train_loop_per_worker
from seqlab.train.tracking import Tracking


@dataclass
class Prepared:
    """What the driver prepares once for a run, or for every trial of a search."""

    task: str  # the key in seqlab.tasks.TASKS
    labels: list[str]  # class i of the model is labels[i]
    tokenizer: dict  # the tokenizer's to_dict(), built on the training split
    vocab_size: int
    card: dict  # the dataset card's summary, saved in every checkpoint
    data_config: DataConfig
    splits: dict[str, EncodedSplit]  # train, validation, test, encoded for the task
    embeddings: np.ndarray | None = None  # (vocab_size, dim) pre-trained word vectors, or None


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


def data_kind(prepared: PreparedData) -> str:
    """What a prepared dataset holds: "molecules", "mentions" (text with start/end columns) or "text"."""
    if prepared.card.get("kind") == "molecules":
        return "molecules"
    return "mentions" if {"start", "end"} <= set(prepared.card.get("extra_columns", [])) else "text"


def check_task(task: str, model: str, prepared: PreparedData) -> None:
    """A model learns from the data its task takes: entity models need mention spans (text models
    would ignore them, so they are refused there), molecule models need SMILES."""
    need, have = task_class(task).data, data_kind(prepared)
    if need == have:
        return
    if have != "text":
        usable = ", ".join(m for m, e in MODELS.items() if task_class(e.task).data == have)
        held, choose = {"molecules": ("molecules (SMILES)", "a molecule"), "mentions": ("entity mentions", "an entity")}[have]
        raise SeqlabError(f"{prepared.name} holds {held}; choose {choose} model: {usable}")
    if need == "molecules":
        raise SeqlabError(f"model {model!r} generates molecules, but {prepared.name} is text; use --dataset moses, "
                          f"moses-scaffolds or a file of SMILES (a 'smiles' column, or .smi)")
    raise SeqlabError(f"model {model!r} classifies entity mentions, but {prepared.name} has no start/end "
                      f"columns; use an entity dataset (bionlp-entities, bionlp-triggers, drugs-target), a "
                      f"brat folder, or a table with text, start, end, label")


def build_tokenizer(kind: str, texts: pd.Series, data_cfg: DataConfig, model_cfg: ModelConfig | None = None,
                    spans: tuple | None = None):
    """The tokenizer of ``kind``, built on the training ``texts`` (and, for mention n-grams, the
    mentions' ``spans``: (starts, ends))."""
    if kind in ("ngrams", "mention-ngrams"):  # the TF-IDF baselines' n-grams, as their options say
        from seqlab.tokenizers.ngrams import MentionNgramTokenizer, NgramTokenizer

        model_cfg = model_cfg or ModelConfig(model="tfidf-linear")
        opts = {n: model_cfg.option(n, p.default) for n, p in entry(model_cfg.model).parameters().items()}
        if opts["ngram_min"] > opts["ngram_max"]:
            raise SeqlabError(f"ngram_min ({opts['ngram_min']}) must not exceed ngram_max ({opts['ngram_max']})")
        settings = {"analyzer": opts["analyzer"], "ngram_range": (opts["ngram_min"], opts["ngram_max"]),
                    "min_df": opts["min_df"], "max_features": opts["max_features"]}
        if kind == "mention-ngrams":
            return MentionNgramTokenizer.build(texts, *spans, context_words=opts["context_words"], **settings)
        return NgramTokenizer.build(texts, **settings)
    if kind == "wordpiece":  # ships with the pre-trained model
        from seqlab.tokenizers.wordpiece import WordPieceTokenizer

        return WordPieceTokenizer.pretrained(max_len=data_cfg.max_len)
    if kind == "char":  # whole texts; the generator task cuts them into windows of max_len
        from seqlab.tokenizers.chars import CharTokenizer

        return CharTokenizer.build(texts, min_freq=data_cfg.min_freq)
    if kind == "smiles":  # every token of the training molecules: a rare atom is still an atom
        from seqlab.tokenizers.smiles import SmilesTokenizer

        return SmilesTokenizer.build(texts, max_len=data_cfg.max_len)
    if kind == "selfies":  # the same, in SELFIES symbols (--representation selfies)
        from seqlab.tokenizers.selfies import SelfiesTokenizer

        return SelfiesTokenizer.build(texts, max_len=data_cfg.max_len)
    from seqlab.tokenizers.words import WordTokenizer

    return WordTokenizer.build(texts, max_size=data_cfg.vocab_size, min_freq=data_cfg.min_freq,
                               max_len=data_cfg.max_len, normalize=data_cfg.normalize)


def prepare(data_cfg: DataConfig, model_cfg: ModelConfig | None = None) -> Prepared:
    """Parquet splits -> tokenizer (train only) -> the task's encoded splits (+ word vectors)."""
    model_cfg = model_cfg or ModelConfig()
    spec = entry(model_cfg.model)
    prepared = prepare_data(data_cfg, molecules=task_class(spec.task).data == "molecules")
    check_task(spec.task, model_cfg.model, prepared)
    frames = load_splits(prepared, data_cfg)
    # a model learns the labels its training rows have (cross-domain: its own domain's)
    cross_domain = bool(data_cfg.train_domain or data_cfg.test_domain)
    labels = sorted(data_cfg.kept_labels() or (set(frames["train"]["label"]) if cross_domain
                                               else prepared.card["classes"]))
    task = make_task(spec.task, len(labels))
    train = frames["train"]
    spans = (train["start"], train["end"]) if task.data == "mentions" else None
    kind = "selfies" if model_cfg.representation == "selfies" else spec.tokenizer  # ModelConfig checked the model
    tokenizer = build_tokenizer(kind, train["text"], data_cfg, model_cfg, spans)
    card = {k: prepared.card[k] for k in ("name", "sha256", "counts", "split_rule")}
    card.update(root=str(prepared.root), limit=data_cfg.limit, keep_labels=data_cfg.kept_labels(),
                fold=data_cfg.fold, train_domain=data_cfg.train_domain, test_domain=data_cfg.test_domain)
    features = {s: None for s in frames}
    if spec.features:
        from seqlab.data.features import FEATURE_NAMES, mention_features

        raw = {s: mention_features(df["text"].tolist(), df["start"].to_numpy(), df["end"].to_numpy())
               for s, df in frames.items()}
        # standardised with the training rows' statistics, kept in the checkpoint for serving
        mean, std = raw["train"].mean(0), raw["train"].std(0) + 1e-6
        features = {s: (x - mean) / std for s, x in raw.items()}
        card["features"] = {"names": list(FEATURE_NAMES), "mean": mean.tolist(), "std": std.tolist()}
    splits = {split: task.encode_frame(tokenizer, df, label_ids(df["label"], labels), max_len=data_cfg.max_len,
                                       features=features[split])
              for split, df in frames.items()}
    out = Prepared(task=spec.task, labels=labels, tokenizer=tokenizer.to_dict(), vocab_size=len(tokenizer),
                   card=card, data_config=data_cfg, splits=splits)
    if model_cfg.embeddings != "random":  # ModelConfig checked that the model has an embedding layer
        from seqlab.modules.embeddings import embedding_matrix

        dim = model_cfg.option("embed_dim") or 300
        vectors, stats = embedding_matrix(tokenizer.vocab, model_cfg.embeddings,
                                          texts=frames["train"]["text"].tolist(), dim=dim, seed=data_cfg.split_seed)
        print(f"[seqlab] {stats['source']} vectors: {stats['found']} of {len(tokenizer) - 2} words "
              f"({stats['coverage']:.1%}), {stats['dim']} dimensions", flush=True)
        out.embeddings, card["embeddings"] = vectors, stats
    return out


def signature(prepared: Prepared, model_cfg: ModelConfig) -> str:
    """What makes a checkpoint usable for resuming: model options, data settings, vocabulary."""
    vocab = hashlib.sha256(json.dumps(prepared.tokenizer, sort_keys=True).encode()).hexdigest()
    blob = json.dumps({"model": identity_of(model_cfg), "data": identity_of(prepared.data_config),
                       "vocab": vocab}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# train fields a resumed run must keep: changing one mid-run gives a run that no setting describes
RESUME_FIELDS = ("lr", "batch_size", "seed", "precision", "class_weight")


def check_resumable(run_path: str, sig: str, train_cfg: TrainConfig | None = None) -> None:
    """Refuse to resume a run whose latest checkpoint was made with other model or data settings, or
    (unless ``train_cfg.allow_changed``) with another lr, batch size, seed, precision or class weighting."""
    found = epoch_folders(run_path)
    if not found:
        return
    try:
        meta = json.loads(read_bytes(f"{found[-1]}/meta.json"))
    except (OSError, ValueError):
        return
    old = meta.get("signature")
    if old != sig:
        raise SeqlabError(f"run {run_path} was started with other model or data settings (signature {old}, now "
                          f"{sig}); keep its settings to resume it, or choose a new --name")
    if train_cfg is None or train_cfg.allow_changed:
        return
    was = meta.get("train", {})
    for field in RESUME_FIELDS:
        if field in was and was[field] != getattr(train_cfg, field):
            raise SeqlabError(f"run {run_path} was trained with {field} {was[field]}, now {getattr(train_cfg, field)}; "
                              f"resuming would mix two settings: keep {field} {was[field]}, choose a new --name, or "
                              f"pass --allow-changed true to continue on purpose")


def model_kwargs(prepared: Prepared, model_cfg: ModelConfig) -> dict:
    """The model's keyword arguments: its options plus the sizes the data sets."""
    kwargs = model_cfg.kwargs()
    if entry(model_cfg.model).takes_max_len:  # generators stop there; the autoencoder's width
        kwargs["max_len"] = prepared.data_config.max_len
    if prepared.embeddings is not None:
        kwargs["embed_dim"] = prepared.embeddings.shape[1]
    if prepared.tokenizer.get("kind") == "mention-ngrams":  # where its vocabulary's context block starts
        kwargs["context_start"] = len(prepared.tokenizer["mention_vocab"])
    return kwargs


def one_pass(model_cfg: ModelConfig, train_cfg: TrainConfig) -> TrainConfig:
    """The run settings of a model fitted in one pass (scikit-learn): one epoch on one CPU worker, since
    more would repeat the same fit; other models' settings as they are."""
    if not entry(model_cfg.model).fitted or (train_cfg.epochs, train_cfg.num_workers, train_cfg.use_gpu) == (1, 1, False):
        return train_cfg
    print(f"[seqlab] {model_cfg.model} is fitted in one pass on one worker (scikit-learn); --epochs "
          f"{train_cfg.epochs} and --num-workers {train_cfg.num_workers} do not apply to it", flush=True)
    return dataclasses.replace(train_cfg, epochs=1, num_workers=1, use_gpu=False)


def fit(prepared: Prepared, model_cfg: ModelConfig, train_cfg: TrainConfig, *, name: str | None = None,
        storage_path: str | None = None, callbacks: list | None = None, metric: tuple[str, str] | None = None,
        replay: bool = False, tracking: Tracking | None = None):
    """Train with Ray Train; returns the ``ray.train.Result``.

    ``metric`` (name, "min"/"max") ranks the kept checkpoints; default: the task's validation metric.
    ``replay``: a resumed run reports its earlier epochs again first (a Tune trial, for ASHA).
    ``tracking``: the MLflow store and experiment rank 0 logs the run to (None: not tracked).
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    task = make_task(prepared.task, len(prepared.labels))
    score, order = metric or (task.metric, task.mode)
    if train_cfg.class_weight != "none" and not hasattr(task, "weigh_classes"):
        raise SeqlabError(f"--class-weight {train_cfg.class_weight}: {prepared.task} models have no classes to weigh; "
                          f"it applies to classifiers (classify, entity)")

    kwargs = model_kwargs(prepared, model_cfg)
    # build once on the driver so a bad model option fails here, in one line, not in every worker
    build_model(model_cfg.model, vocab_size=prepared.vocab_size, num_classes=len(prepared.labels), **kwargs)
    name, storage_path = name or train_cfg.name, storage_path or train_cfg.resolved_storage()
    train_cfg = dataclasses.replace(train_cfg, lr=train_cfg.lr or entry(model_cfg.model).lr)
    train_cfg = one_pass(model_cfg, train_cfg)
    run_path = f"{storage_path.rstrip('/')}/{name}"
    sig = signature(prepared, model_cfg)
    check_resumable(run_path, sig, train_cfg)
    spec = RunSpec(
        name=name, run_uri=run_path, signature=sig, task=prepared.task, labels=prepared.labels,
        tokenizer=prepared.tokenizer, vocab_size=prepared.vocab_size, card=prepared.card,
        max_len=prepared.data_config.max_len, model=model_cfg, model_kwargs=kwargs, train=train_cfg,
        # the test split stays on the driver
        data=ray.put({k: v for k, v in prepared.splits.items() if k != "test"}),
        vectors=None if prepared.embeddings is None else ray.put(prepared.embeddings),
        tensorboard_dir=train_cfg.tensorboard_dir or join(run_path, "tensorboard"),  # on s3:// too: copied there
        replay=replay, tracking=tracking,
    )
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"run": spec},
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


def evaluate_test(checkpoint_path: str, data_cfg: DataConfig) -> dict:
    """The task's metrics of a checkpoint on the test split (a molecule generator adds reconstruction
    and sample quality)."""
    with local_dir(checkpoint_path) as d:
        model = load_predictor(d)
        molecules = model.task.data == "molecules"
        return model.evaluate(load_split(prepare_data(data_cfg, molecules=molecules), "test", data_cfg))
