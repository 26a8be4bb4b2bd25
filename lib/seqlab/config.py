"""Job configuration: dataclasses whose field help becomes ``--help``.

Precedence: defaults, then a YAML file (``--config``, sections ``data``, ``model``, ``train``,
``search``), then command-line flags. Validation happens on construction and is worded in the
user's terms.
"""

from __future__ import annotations

import argparse
import os
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqlab.errors import SeqlabError


def opt(default: Any, help: str, **kw) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class DataConfig:
    dataset: str = opt("cfpb", "built-in dataset (cfpb, drugs-rating, drugs-condition, sentences5, sentences2; "
                               "entity mentions: bionlp-entities, bionlp-triggers, drugs-target), a "
                               "CSV/JSONL/Parquet path or s3:// URI, or a folder of brat .txt/.ann files")
    text_column: str | None = opt(None, "text column of a user data file")
    label_column: str | None = opt(None, "label column of a user data file")
    test_data: str | None = opt(None, "separate test file for user data (else a stratified 10%% split)")
    val_fraction: float = opt(0.1, "fraction of train held out for validation, stratified")
    split_seed: int = opt(0, "seed of the validation (and test) split")
    vocab_size: int = opt(20000, "largest vocabulary, built on the training split only")
    min_freq: int = opt(2, "least count of a word to enter the vocabulary")
    max_len: int = opt(400, "tokens kept per text (the head of the text)")
    limit: int | None = opt(None, "use only the first N rows of each split (smoke runs)")
    keep_labels: str | None = opt(None, "comma-separated labels to keep, e.g. one category for a per-category "
                                        "generator")
    normalize: str = opt("default", "word tokenizer text cleaning: default, or seed001 (lower-case, expand "
                                    "contractions, split punctuation)")
    fold: int | None = opt(None, "cross-validation: test on this fold (0-4) of the data's 'fold' column, train "
                                 "and validate on the other four (entity datasets; folds keep documents whole)")
    train_domain: str | None = opt(None, "train only on rows whose 'domain' column has this value (e.g. GE)")
    test_domain: str | None = opt(None, "test only on rows whose 'domain' column has this value (cross-domain)")

    def __post_init__(self):
        if self.fold is not None and not 0 <= self.fold < 5:
            raise SeqlabError(f"fold must be 0-4 (5-fold cross-validation), got {self.fold}")
        if not 0 < self.val_fraction < 0.5:
            raise SeqlabError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if self.vocab_size < 10 or self.max_len < 1:
            raise SeqlabError("vocab_size must be >= 10 and max_len >= 1")
        if self.limit is not None and self.limit < 8:
            raise SeqlabError(f"limit must be >= 8 rows, got {self.limit}")
        if self.normalize not in ("default", "seed001"):
            raise SeqlabError(f"normalize must be default or seed001, got {self.normalize!r}")

    def kept_labels(self) -> list[str] | None:
        return [x.strip() for x in self.keep_labels.split(",") if x.strip()] if self.keep_labels else None


@dataclass
class ModelConfig:
    """Model options; unset ones (None) take the chosen model's own default (``seqlab models``)."""

    model: str = opt("lstm", "model name in the registry (seqlab models): lstm, lstm-stacked, cnn, minilm, "
                             "char-lstm; entity mentions: lstm-ca, lstm-ca-feat, td-lstm, sentence-lstm, "
                             "sentence-cnn, sentence-minilm")
    embed_dim: int | None = opt(None, "embedding width (char-lstm: 0 = one-hot characters)")
    hidden: int | None = opt(None, "LSTM width (searched)")
    hidden2: int | None = opt(None, "width of a second, stacked LSTM (lstm-stacked: 20)")
    dropout: float | None = opt(None, "dropout (searched)")
    spatial_dropout: float | None = opt(None, "dropout of whole embedding channels")
    bidirectional: bool | None = opt(None, "run the LSTM in both directions (packed; ~30x slower to train on CPU)")
    pooling: str | None = opt(None, "'max' over time steps or the 'last' hidden state (seed 001)")
    filters: int | None = opt(None, "cnn: filters per convolution")
    kernel_size: int | None = opt(None, "cnn: convolution width")
    conditional: bool | None = opt(None, "char-lstm: one model for all categories, with a category input")
    l2: float | None = opt(None, "lstm-ca, td-lstm: L2 regularisation added to the loss (thesis: 0.001)")
    embeddings: str = opt("random", "initial word vectors: random, spacy (en_core_web_md) or word2vec "
                                    "(trained on the training split)")
    freeze_embeddings: bool | None = opt(None, "keep the word vectors fixed during training")
    num_layers: int | None = opt(None, "smiles-rnn: stacked LSTM layers (2)")
    latent: int | None = opt(None, "smiles-vae, smiles-ae: latent size (64; write-up 004's autoencoder: 7)")
    beta: float | None = opt(None, "smiles-vae: final KL weight (0.1)")
    anneal_steps: int | None = opt(None, "smiles-vae: steps over which the KL weight rises from 0 to beta (3000)")
    free_bits: float | None = opt(None, "smiles-vae: least KL (nats) each latent dimension is charged (0.05)")
    word_dropout: float | None = opt(None, "smiles-vae: share of decoder input tokens replaced by <unk> (0.1)")

    def __post_init__(self):
        for name in ("hidden", "embed_dim", "filters", "kernel_size", "latent", "num_layers"):
            v = getattr(self, name)
            if v is not None and v < (0 if name == "embed_dim" else 1):
                raise SeqlabError(f"{name} must be positive, got {v}")
        if self.pooling not in (None, "max", "last"):
            raise SeqlabError(f"pooling must be 'max' or 'last', got {self.pooling!r}")
        if self.embeddings not in ("random", "spacy", "word2vec"):
            raise SeqlabError(f"embeddings must be random, spacy or word2vec, got {self.embeddings!r}")
        for name in ("dropout", "spatial_dropout", "word_dropout"):
            v = getattr(self, name)
            if v is not None and not 0 <= v < 1:
                raise SeqlabError(f"{name} must be in [0, 1), got {v}")
        from seqlab.models import entry

        spec = entry(self.model)  # an unknown name fails here, listing the models
        unknown = sorted(set(self.kwargs()) - set(spec.options()))
        if unknown:
            raise SeqlabError(f"model {self.model!r} has no option {unknown[0]!r}; options: "
                              f"{', '.join(sorted(spec.options()))}")
        if self.embeddings != "random" and "freeze_embeddings" not in spec.options():
            from seqlab.models import MODELS

            usable = [m for m, e in MODELS.items() if "freeze_embeddings" in e.options()]
            raise SeqlabError(f"--embeddings {self.embeddings}: model {self.model!r} has no word embedding layer; "
                              f"use one of {', '.join(usable)}")

    def kwargs(self) -> dict:
        """The options that were set, for the model's builder."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k not in ("model", "embeddings")}


@dataclass
class TrainConfig:
    name: str = opt("cfpb-lstm", "run name; running again with the same name resumes from its latest checkpoint")
    storage_path: str | None = opt(None, "folder or s3:// URI for runs (default $SEQLAB_STORAGE, else $SEQLAB_HOME/runs)")
    epochs: int = opt(8, "training epochs")
    batch_size: int = opt(64, "examples per step per worker")
    lr: float | None = opt(None, "AdamW learning rate (default: the model's, 2e-3; minilm 5e-5)")
    weight_decay: float = opt(1e-2, "AdamW weight decay")
    grad_clip: float = opt(1.0, "gradient norm clip (0 = off)")
    seed: int = opt(0, "seed of initialisation and shuffling")
    num_workers: int = opt(2, "Ray Train workers (data-parallel)")
    cpus_per_worker: int = opt(1, "CPUs per worker (torch threads)")
    use_gpu: bool = opt(False, "one GPU per worker")
    precision: str = opt("bf16", "on GPU: bf16, fp16 (with loss scaling) or fp32; CPU always runs fp32")
    keep_checkpoints: int = opt(3, "checkpoints kept, best by validation macro-F1 (the latest is always kept)")
    max_failures: int = opt(0, "worker-group restarts from the latest checkpoint after a failure")
    sample_molecules: int = opt(1000, "molecule models: molecules sampled at the end of each epoch to report "
                                      "valid, unique, novelty and chem_score = their product (0 = off)")
    tensorboard_dir: str | None = opt(None, "folder for TensorBoard event files (default: <run folder>/tensorboard "
                                            "when runs are stored locally)")

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.num_workers < 1:
            raise SeqlabError("epochs, batch_size and num_workers must be >= 1")
        if self.precision not in ("bf16", "fp16", "fp32"):
            raise SeqlabError(f"precision must be bf16, fp16 or fp32, got {self.precision!r}")
        if not self.name or "/" in self.name:
            raise SeqlabError(f"run name must be non-empty without '/', got {self.name!r}")
        if self.keep_checkpoints < 1:
            raise SeqlabError("keep_checkpoints must be >= 1")

    def resolved_storage(self) -> str:
        from seqlab.data import seqlab_home

        path = self.storage_path or os.environ.get("SEQLAB_STORAGE")
        if not path:
            return str(seqlab_home() / "runs")
        return path if "://" in path else str(Path(path).expanduser().resolve())


@dataclass
class SearchConfig:
    search_name: str = opt("cfpb-lstm-search", "search name (its trials are named from their configs)")
    num_samples: int = opt(4, "trials")
    max_concurrent: int = opt(2, "trials running at once")
    hidden_min: int = opt(32, "smallest LSTM width (log-uniform)")
    hidden_max: int = opt(512, "largest LSTM width")
    dropout_min: float = opt(0.0, "smallest dropout")
    dropout_max: float = opt(0.6, "largest dropout")
    search_lr: bool = opt(False, "also search the learning rate (log-uniform 3e-4..1e-2)")
    hidden_values: str | None = opt(None, "comma-separated LSTM widths to choose from, e.g. 32,64,128 (instead of "
                                          "the log-uniform range)")
    dropout_values: str | None = opt(None, "comma-separated dropouts to choose from, e.g. 0,0.25,0.5")
    grid: bool = opt(False, "run every combination of --hidden-values x --dropout-values for all epochs (no "
                            "TPE, no early stopping): the reference a search is measured against")
    grace_period: int = opt(1, "ASHA: epochs every trial runs before it can be stopped")
    reduction_factor: int = opt(2, "ASHA: keep 1/reduction_factor of trials at each rung")
    objective: str = opt("default", "what the search optimises: default (the model's validation metric: macro-F1, "
                                    "nats per char, ELBO) or chem (molecule models: val_chem_score = validity x "
                                    "uniqueness x novelty of sampled molecules)")
    results_dir: str = opt("results", "where search.csv, the plot and best.json go (<results_dir>/<dataset>/); "
                                      "a folder or s3:// URI")
    study_storage: str | None = opt(None, "Optuna study database: sqlite:///path.db or postgresql://user:pw@host/db "
                                          "(default: SQLite next to the search; use PostgreSQL on a cluster so the "
                                          "study outlives the head node)")

    def __post_init__(self):
        if self.num_samples < 1 or self.max_concurrent < 1:
            raise SeqlabError("num_samples and max_concurrent must be >= 1")
        if not 1 <= self.hidden_min <= self.hidden_max:
            raise SeqlabError(f"need 1 <= hidden_min <= hidden_max, got {self.hidden_min}, {self.hidden_max}")
        if not 0 <= self.dropout_min <= self.dropout_max < 1:
            raise SeqlabError("need 0 <= dropout_min <= dropout_max < 1")
        if self.study_storage and not self.study_storage.startswith(("sqlite:///", "postgresql", "mysql")):
            raise SeqlabError(f"study_storage must be a database URL (sqlite:///path.db or postgresql://...), "
                              f"got {self.study_storage!r}")
        if self.objective not in ("default", "chem"):
            raise SeqlabError(f"objective must be default or chem, got {self.objective!r}")
        hidden, dropout = self.values("hidden"), self.values("dropout")
        if any(h < 1 or h != int(h) for h in hidden or []):
            raise SeqlabError(f"hidden_values must be whole numbers >= 1, got {self.hidden_values!r}")
        if any(not 0 <= d < 1 for d in dropout or []):
            raise SeqlabError(f"dropout_values must lie in [0, 1), got {self.dropout_values!r}")
        if self.grid and not (hidden and dropout):
            raise SeqlabError("grid needs both hidden_values and dropout_values (e.g. 32,64,128 and 0,0.25,0.5)")
        if self.grid and self.search_lr:
            raise SeqlabError("grid runs --hidden-values x --dropout-values only; leave out search_lr")

    def values(self, name: str) -> list[float] | None:
        """``hidden_values`` / ``dropout_values`` as numbers, or None when the range is searched."""
        text = getattr(self, f"{name}_values")
        if not text:
            return None
        try:
            return [float(v) for v in str(text).split(",") if v.strip()]
        except ValueError:
            raise SeqlabError(f"{name}_values must be comma-separated numbers, got {text!r}") from None


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "search": SearchConfig}


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def add_arguments(parser: argparse.ArgumentParser, sections: list[str]) -> None:
    """One ``--flag`` per field; defaults stay unset so YAML values are not overridden."""
    parser.add_argument("--config", help="YAML file with sections " + ", ".join(sections))
    for section in sections:
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(SECTIONS[section]):
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            conv = _bool if kind.startswith("bool") else int if kind.startswith("int") else (
                float if kind.startswith("float") else str)
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"{section}.{f.name}", type=conv,
                               default=argparse.SUPPRESS, metavar=kind.split(" ")[0].upper(),
                               help=f"{f.metadata['help']} (default: {f.default})")


def from_arguments(args: argparse.Namespace, sections: list[str]) -> dict[str, Any]:
    raw: dict[str, dict] = {s: {} for s in sections}
    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.exists():
            raise SeqlabError(f"config file {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        unknown = set(loaded) - set(sections)
        if unknown:
            raise SeqlabError(f"{path}: unknown section {sorted(unknown)[0]!r}; expected {', '.join(sections)}")
        for s, values in loaded.items():
            raw[s].update(values or {})
    for key, value in vars(args).items():
        if "." in key:
            s, k = key.split(".", 1)
            raw[s][k] = value
    out = {}
    for s in sections:
        try:
            out[s] = SECTIONS[s](**raw[s])
        except TypeError as exc:
            raise SeqlabError(f"section {s!r}: {exc}") from exc
    return out
