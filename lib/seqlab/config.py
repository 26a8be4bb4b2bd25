"""Job configuration: dataclasses whose field help becomes ``--help``.

Precedence: defaults, then a YAML file (``--config``, sections ``data``, ``model``, ``train``,
``search``), then command-line flags. Every value, from YAML or a flag, is converted to its field's
declared type on the way in (``lr: 1e-3`` is the number 0.001; ``epochs: ten`` is refused naming
``train.epochs``), and validated on construction in the user's terms.

A model's options are not fields here: they are the keyword arguments of its builder
(:mod:`seqlab.models`), so ``seqlab train --model cnn --help`` lists the CNN's options and an
option of another family is refused, naming the model's.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home


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
    """The model and its options; an option left out takes the builder's default (``seqlab models``)."""

    model: str = opt("lstm", "model name (seqlab models): lstm, lstm-stacked, cnn, minilm, char-lstm, tfidf-linear "
                             "(the classical baseline); entity "
                             "mentions: lstm-ca, lstm-ca-feat, td-lstm, sentence-lstm, sentence-cnn, sentence-minilm; "
                             "molecules: smiles-ae, smiles-vae, smiles-rnn")
    embeddings: str = opt("random", "initial word vectors: random, spacy (en_core_web_md) or word2vec "
                                    "(trained on the training split)")
    representation: str = opt("smiles", "molecule sequence models (smiles-vae, smiles-rnn): read and write "
                                        "molecules as SMILES tokens or as SELFIES symbols, any sequence of which that "
                                        "places an atom decodes to a valid molecule (data, metrics and answers stay "
                                        "SMILES; --max-len then counts SELFIES symbols)", omit_default=True)
    options: dict = field(default_factory=dict, metadata={"help": "the model's own options: its builder's keyword "
                                                                  "arguments (flags named after them)"})

    def __post_init__(self):
        from seqlab.models import MODELS, check_option, entry, option_type

        if self.embeddings not in ("random", "spacy", "word2vec"):
            raise SeqlabError(f"embeddings must be random, spacy or word2vec, got {self.embeddings!r}")
        spec = entry(self.model)  # an unknown name fails here, listing the models
        params = spec.parameters()
        unknown = sorted(set(self.options) - set(params))
        if unknown:
            raise SeqlabError(f"model {self.model!r} has no option {unknown[0]!r}; options: "
                              f"{', '.join(sorted(params))}")
        self.options = {k: convert(v, option_type(params[k]), f"model.{k}") for k, v in self.options.items()}
        for k, v in self.options.items():
            check_option(k, v)
        if self.representation not in ("smiles", "selfies"):
            raise SeqlabError(f"representation must be smiles or selfies, got {self.representation!r}")
        if self.representation == "selfies" and not spec.selfies:
            usable = [m for m, e in MODELS.items() if e.selfies]
            raise SeqlabError(f"--representation selfies: model {self.model!r} reads no SELFIES; models that do: "
                              f"{', '.join(usable)}")
        if self.embeddings != "random" and not spec.takes_vectors:
            usable = [m for m, e in MODELS.items() if e.takes_vectors]
            raise SeqlabError(f"--embeddings {self.embeddings}: model {self.model!r} has no word embedding layer; "
                              f"use one of {', '.join(usable)}")

    @classmethod
    def from_flat(cls, values: dict) -> ModelConfig:
        """From a YAML ``model:`` section or the flags: ``model``, ``embeddings`` and the options side by side."""
        values = dict(values)
        known = {f.name: values.pop(f.name) for f in dataclasses.fields(cls) if f.name in values}
        return cls(**{**known, "options": {**known.get("options", {}), **values}})

    def kwargs(self) -> dict:
        """The options that were set, for the model's builder."""
        return dict(self.options)

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


@dataclass
class TrainConfig:
    name: str = opt("cfpb-lstm", "run name; running again with the same name resumes from its latest checkpoint")
    storage_path: str | None = opt(None, "folder or s3:// URI for runs (default $SEQLAB_STORAGE, else $SEQLAB_HOME/runs)")
    epochs: int = opt(8, "training epochs")
    batch_size: int = opt(64, "examples per step per worker")
    lr: float | None = opt(None, "AdamW learning rate (default: the model's, 2e-3; minilm 5e-5)")
    weight_decay: float = opt(1e-2, "AdamW weight decay")
    grad_clip: float = opt(1.0, "gradient norm clip (0 = off)")
    class_weight: str = opt("none", "classifiers: 'balanced' weighs each class's loss by n / (classes x its training "
                                    "count), as scikit-learn's class_weight='balanced' (for macro-F1 on skewed classes); "
                                    "'none' weighs every example alike")
    seed: int = opt(0, "seed of initialisation and shuffling")
    num_workers: int = opt(2, "Ray Train workers (data-parallel)")
    cpus_per_worker: int = opt(1, "CPUs per worker (torch threads)")
    use_gpu: bool = opt(False, "one GPU per worker")
    precision: str = opt("bf16", "on GPU: bf16, fp16 (with loss scaling) or fp32; CPU always runs fp32")
    keep_checkpoints: int = opt(3, "checkpoints kept, best by validation macro-F1 (the latest is always kept)")
    max_failures: int = opt(0, "worker-group restarts from the latest checkpoint after a failure")
    allow_changed: bool = opt(False, "resume a run although its lr, batch_size, seed or precision changed (refused "
                                     "otherwise: the run would mix two settings)")
    sample_molecules: int = opt(1000, "molecule models: molecules sampled at the end of each epoch to report "
                                      "valid, unique, novelty and chem_score = their product (0 = off)")
    tensorboard_dir: str | None = opt(None, "folder or s3:// URI for TensorBoard event files (default: <run folder>/"
                                            "tensorboard, also for runs stored on s3://)")
    tracking_uri: str | None = opt(None, "MLflow store the runs are logged in: sqlite:///path.db, postgresql://..., "
                                         "http://<tracking server>:5000, or none (default: SQLite next to runs in a "
                                         "local folder, <storage>/mlflow.db; runs on s3:// need this flag)")
    experiment: str = opt("seqlab", "MLflow experiment the runs (and searches, one parent run each) are logged in")

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.num_workers < 1:
            raise SeqlabError("epochs, batch_size and num_workers must be >= 1")
        if self.class_weight not in ("none", "balanced"):
            raise SeqlabError(f"class_weight must be none or balanced, got {self.class_weight!r}")
        if self.precision not in ("bf16", "fp16", "fp32"):
            raise SeqlabError(f"precision must be bf16, fp16 or fp32, got {self.precision!r}")
        if not self.name or "/" in self.name:
            raise SeqlabError(f"run name must be non-empty without '/', got {self.name!r}")
        if self.keep_checkpoints < 1:
            raise SeqlabError("keep_checkpoints must be >= 1")

    def resolved_storage(self) -> str:
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
    results_dir: str | None = opt(None, "where search.csv, the plot, best.json and the test report go "
                                        "(<results_dir>/<dataset>-<model>/): a folder or s3:// URI (default: "
                                        "$SEQLAB_HOME/results, outside the checkout; the committed figures in "
                                        "results/ are made with --results-dir results)")
    study_storage: str | None = opt(None, "Optuna study database: sqlite:///path.db or postgresql://user:pw@host/db "
                                          "(default: SQLite next to the search; use PostgreSQL on a cluster so the "
                                          "study outlives the head node)")
    space: dict | None = opt(None, "the search space as data, replacing the width/dropout flags above: FIELD=SPEC, "
                                   "FIELD any model option or train field, SPEC one of uniform[a, b], "
                                   "loguniform[a, b], randint[a, b], lograndint[a, b] (bounds included), "
                                   "choice[v, ...], grid[v, ...] (e.g. --space hidden=lograndint[32,512] "
                                   "--space lr=loguniform[3e-4,1e-2]; in YAML a mapping)")

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
        if self.space is not None:
            from seqlab.tune.space import parse_space

            parse_space(self.space)  # a bad spec fails here, naming the field

    def resolved_results(self) -> str:
        return self.results_dir or str(seqlab_home() / "results")

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


def identity_of(cfg) -> dict:
    """``dataclasses.asdict(cfg)`` for a run's or search's identity (signature, study name), less the fields
    marked ``omit_default`` while they hold their default: a field added later then leaves the identity of
    the runs and searches started before it as it was, so they still resume."""
    quiet = {f.name for f in dataclasses.fields(cfg)
             if f.metadata.get("omit_default") and getattr(cfg, f.name) == f.default}
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in quiet}


# ---- typed values ------------------------------------------------------------------------------

_WHAT = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` (from YAML or a flag) as ``kind`` (``int``, ``float | None``, ``dict | None``, ...);
    a value that is not one is refused naming ``where`` (``train.epochs``) and what is expected."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return convert(value, args[0], where)
    kind = typing.get_origin(kind) or kind
    if kind is Any:
        return value
    if kind is dict:
        if isinstance(value, dict):
            return value
        raise SeqlabError(f"{where}: expected a mapping (FIELD: VALUE), got {value!r}")
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if ok or (kind is float and isinstance(value, int) and not isinstance(value, bool)):
        return kind(value)
    if kind is int and isinstance(value, float) and value.is_integer():  # 32.0 from a sampler is 32
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind is bool and text.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return text.lower() in ("1", "true", "yes", "on")
            if kind is int:
                return int(text)
            if kind is float:
                return float(text)
            if kind is str:
                return text
        except ValueError:
            pass
    elif kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise SeqlabError(f"{where}: expected {_WHAT.get(kind, kind.__name__)}, got {value!r}")


def _typed(cls: type, values: dict, section: str) -> dict:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SeqlabError(f"section {section!r} has no field {unknown[0]!r}; fields are {', '.join(sorted(names))}")
    return {k: convert(v, hints[k], f"{section}.{k}") for k, v in values.items()}


# ---- flags -------------------------------------------------------------------------------------

def _metavar(kind: Any) -> str:
    kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)
    return getattr(kind, "__name__", "VALUE").upper()


class _Pairs(argparse.Action):
    """``--space hidden=lograndint[32,512]``, repeatable: a mapping."""

    def __call__(self, parser, namespace, value, option_string=None):
        key, sep, spec = value.partition("=")
        if not sep or not key.strip():
            raise SeqlabError(f"{option_string} {value!r}: expected FIELD=SPEC, e.g. hidden=lograndint[32,512]")
        current = dict(getattr(namespace, self.dest, None) or {})
        current[key.strip()] = spec.strip()
        setattr(namespace, self.dest, current)


def add_arguments(parser: argparse.ArgumentParser, sections: list[str], model: str | None = None) -> None:
    """One ``--flag`` per field (values stay text here, converted with the YAML's), and for the
    ``model`` section one per option of ``model``; flags left out stay unset so YAML values hold.

    Other models' options are accepted too but not listed, so that one given for the wrong model
    is refused naming the chosen model's options rather than as an unknown flag."""
    from seqlab.models import MODELS, OPTIONS, entry

    parser.add_argument("--config", help="YAML file with sections " + ", ".join(sections))
    for section in sections:
        group = parser.add_argument_group(section)
        hints = typing.get_type_hints(SECTIONS[section])
        for f in dataclasses.fields(SECTIONS[section]):
            if f.name == "options":
                continue
            flag = f"--{f.name.replace('_', '-')}"
            if typing.get_origin(hints[f.name]) is dict or dict in typing.get_args(hints[f.name]):
                group.add_argument(flag, dest=f"{section}.{f.name}", action=_Pairs, default=argparse.SUPPRESS,
                                   metavar="FIELD=SPEC", help=f.metadata["help"])
                continue
            _flag(group, f.name, f"{section}.{f.name}", _metavar(hints[f.name]),
                  f"{f.metadata['help']} (default: {f.default})")
        if section != "model":
            continue
        shown = entry(model or "lstm")
        group = parser.add_argument_group(f"options of --model {model or 'lstm'} (another model's: "
                                          f"{parser.prog} --model NAME --help)")
        for name, p in shown.parameters().items():
            about = OPTIONS[name].help if name in OPTIONS else "model option"
            _flag(group, name, f"model.{name}", _metavar_of(p), f"{about} (default: {p.default})")
        others = {n: p for e in MODELS.values() for n, p in e.parameters().items() if n not in shown.options()}
        for other, p in sorted(others.items()):
            _flag(parser, other, f"model.{other}", _metavar_of(p), argparse.SUPPRESS)


def _flag(group, name: str, dest: str, metavar: str, help: str) -> None:
    """``--name VALUE``; a true/false field also takes ``--name`` alone for true and ``--no-name`` for false."""
    flag = f"--{name.replace('_', '-')}"
    if metavar != "BOOL":
        group.add_argument(flag, dest=dest, default=argparse.SUPPRESS, metavar=metavar, help=help)
        return
    group.add_argument(flag, dest=dest, default=argparse.SUPPRESS, nargs="?", const="true", metavar="BOOL", help=help)
    group.add_argument(f"--no-{name.replace('_', '-')}", dest=dest, default=argparse.SUPPRESS, action="store_const",
                       const="false", help=argparse.SUPPRESS if help == argparse.SUPPRESS else f"the same as {flag} false")


def _metavar_of(parameter: inspect.Parameter) -> str:
    from seqlab.models import option_type

    return option_type(parameter).__name__.upper()


def chosen_model(argv: list[str]) -> str | None:
    """The ``--model`` of a command line (or of its ``--config`` YAML), for ``--help``."""
    for i, arg in enumerate(argv):
        if arg == "--model" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv) and Path(argv[i + 1]).is_file():
            try:
                return ((yaml.safe_load(Path(argv[i + 1]).read_text()) or {}).get("model") or {}).get("model")
            except (yaml.YAMLError, AttributeError):
                return None
    return None


def from_arguments(args: argparse.Namespace, sections: list[str]) -> dict[str, Any]:
    raw: dict[str, dict] = {s: {} for s in sections}
    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.exists():
            raise SeqlabError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SeqlabError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise SeqlabError(f"{path}: expected sections {', '.join(sections)} at the top level")
        unknown = set(loaded) - set(sections)
        if unknown:
            raise SeqlabError(f"{path}: unknown section {sorted(unknown)[0]!r}; expected {', '.join(sections)}")
        for s, values in loaded.items():
            if values is not None and not isinstance(values, dict):
                raise SeqlabError(f"{path}: section {s!r} must be a mapping of field: value")
            raw[s].update(values or {})
    for key, value in vars(args).items():
        if "." in key:
            s, k = key.split(".", 1)
            if s in raw:
                raw[s][k] = value
    out = {}
    for s in sections:
        if s == "model":
            out[s] = ModelConfig.from_flat(raw[s])
        else:
            out[s] = SECTIONS[s](**_typed(SECTIONS[s], raw[s], s))
    return out
