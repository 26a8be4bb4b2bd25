"""Ray Tune + Optuna (TPE) search over a space given as data (:mod:`seqlab.tune.space`), with ASHA
early stopping; by default LSTM width and dropout.

Ray Train V2: each trial runs :func:`trial_driver`, which builds a ``TorchTrainer`` through the
same :func:`seqlab.train.driver.fit` as the train job; a ``TuneReportCallback`` forwards the
workers' per-epoch reports to Tune, so ASHA can stop a trial between epochs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing

import pyarrow.fs as pa_fs

from seqlab.config import DataConfig, ModelConfig, SearchConfig, TrainConfig, convert, identity_of
from seqlab.errors import SeqlabError
from seqlab.models import MODELS, entry, option_type
from seqlab.storage import join, open_fs, ray_storage
from seqlab.tasks import make_task
from seqlab.train.driver import Prepared, fit
from seqlab.train.tracking import Tracking
from seqlab.tune import space
from seqlab.tune.progress import TrialStory
from seqlab.tune.study import PersistentOptunaSearch, open_study_storage, redact, study_counts, study_storage


def check_searchable(cfg: SearchConfig, model: str) -> dict[str, space.Dim]:
    """The search's space, each field checked against the model's options and the train fields."""
    dims = space.space_of(cfg)
    targets(dims, model)
    return dims


def objective(task_name: str, cfg: SearchConfig, train_cfg: TrainConfig) -> tuple[str, str]:
    """The metric the search optimises and its direction."""
    task = make_task(task_name, 2)
    if cfg.objective == "default":
        return task.metric, task.mode
    if task.data != "molecules":
        raise SeqlabError("--objective chem scores sampled molecules; it needs a molecule model "
                          "(smiles-vae, smiles-rnn, smiles-ae)")
    if train_cfg.sample_molecules < 1:
        raise SeqlabError("--objective chem needs --sample-molecules >= 1 (molecules sampled per epoch)")
    return "val_chem_score", "max"


def targets(dims: dict[str, space.Dim], model: str) -> dict[str, str]:
    """``field -> "model" | "train"``: where each searched field goes; an unknown field is refused."""
    options = entry(model).options()
    train = {f.name for f in dataclasses.fields(TrainConfig)}
    out = {}
    for name in dims:
        if name in options:
            out[name] = "model"
        elif name in train:
            out[name] = "train"
        elif name in ("hidden", "dropout"):
            searchable = [m for m, e in MODELS.items() if {"hidden", "dropout"} <= set(e.options())]
            raise SeqlabError(f"model {model!r} has no LSTM width to search; searchable models: "
                              f"{', '.join(searchable)} (or give --space with {model}'s own options)")
        else:
            raise SeqlabError(f"search space: {name!r} is neither an option of model {model!r} ("
                              f"{', '.join(options)}) nor a train field ({', '.join(sorted(train))})")
    return out


def apply(config: dict, model_cfg, train_cfg):
    """``(model_cfg, train_cfg)`` of a trial: the run's settings with the trial's values in place."""
    params = entry(model_cfg.model).parameters()
    where = targets({k: None for k in config}, model_cfg.model)
    options = dict(model_cfg.options)
    train = {}
    for name, value in config.items():
        if where[name] == "model":
            options[name] = convert(value, option_type(params[name]), f"search.space.{name}")
        else:
            train[name] = value
    model_cfg = dataclasses.replace(model_cfg, options=options)
    return model_cfg, dataclasses.replace(train_cfg, **_typed_train(train))


def _typed_train(values: dict) -> dict:
    hints = typing.get_type_hints(TrainConfig)
    return {k: convert(v, hints[k], f"search.space.{k}") for k, v in values.items()}


def trial_name(trial) -> str:
    # Named from the config alone (Tune's trial ids are random): the seeded sampler makes it repeatable
    return space.trial_name(trial.config)


def numbered_trial_name(trial) -> str:
    # choosing from listed values, TPE can pick one config twice: Tune's trial counter tells them apart
    return f"{trial_name(trial)}-t{trial.experiment_tag.split('_', 1)[0]}"


def trial_driver(config: dict, *, prepared: Prepared, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 trials_path: str, metric: tuple[str, str], tracking: Tracking | None = None):
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    mc, tc = apply(config, model_cfg, train_cfg)
    fit(prepared, mc, tc, name=tune.get_context().get_trial_name(), storage_path=trials_path,
        callbacks=[TuneReportCallback()], metric=metric, replay=True, tracking=tracking)


def search_settings(data_cfg: DataConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, cfg: SearchConfig) -> dict:
    """A search's settings apart from the values its trials try, and the name of its Optuna study,
    derived from what the search is (its name, data, model and space): two searches that share a
    name but not these never feed on each other's trials in a shared study database."""
    dims = check_searchable(cfg, model_cfg.model)
    where = targets(dims, model_cfg.model)
    experiment = join(train_cfg.resolved_storage(), cfg.search_name)
    space_text = {k: str(d) for k, d in dims.items()}
    model = identity_of(model_cfg) | {"options": {k: v for k, v in model_cfg.options.items() if where.get(k) != "model"}}
    identity = json.dumps({"search": cfg.search_name, "data": identity_of(data_cfg), "model": model,
                           "space": space_text}, sort_keys=True)
    return {"study_name": f"{cfg.search_name}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}",
            "search": dataclasses.asdict(cfg) | {"results_dir": None, "study_storage": study_storage(cfg, experiment)},
            "space": space_text, "data": identity_of(data_cfg), "model": model,
            # where runs are stored and tracked is no part of what the search is
            "train": dataclasses.asdict(train_cfg) | {"storage_path": None, "tracking_uri": None, "experiment": None}
            | {k: None for k, t in where.items() if t == "train"}}


def _first_difference(old, new, path: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else f"{path} was {old!r}, now {new!r}"


def check_unchanged(experiment: str, settings: dict) -> None:
    """Refuse to go on with a search folder that was started with other settings, naming the first
    that differs (before Ray starts, when the train or tune job calls it first)."""
    fs, path = open_fs(experiment)
    sig_path = f"{path}/seqlab_search.json"
    if fs.get_file_info(sig_path).type != pa_fs.FileType.File:
        return
    with fs.open_input_stream(sig_path) as f:
        old = json.loads(f.read())
    changed = _first_difference(old, json.loads(json.dumps(settings)))
    if changed:
        raise SeqlabError(f"search {experiment} was started with other settings ({changed}); keep them to resume "
                          f"it, or choose a new --search-name")


def run_search(prepared: Prepared, model_cfg: ModelConfig, train_cfg: TrainConfig, cfg: SearchConfig,
               tracking: Tracking | None = None):
    """Run (or resume) the search named ``cfg.search_name``; returns the ``ResultGrid``. With
    ``tracking`` (a search's parent run: :func:`seqlab.train.tracking.start_search`) every trial is
    logged to MLflow as its child."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    dims = check_searchable(cfg, model_cfg.model)
    metric, mode = objective(prepared.task, cfg, train_cfg)
    storage = train_cfg.resolved_storage()
    experiment = join(storage, cfg.search_name)
    trainable = tune.with_resources(
        tune.with_parameters(trial_driver, prepared=prepared, model_cfg=model_cfg, train_cfg=train_cfg,
                             trials_path=join(experiment, "trials"), metric=(metric, mode), tracking=tracking),
        # The driver only waits on its TorchTrainer, whose workers hold the CPUs/GPUs. Tune refuses
        # an all-zero bundle, so the driver asks for a little memory and no CPU.
        {"cpu": 0, "memory": 64 * 1024**2},
    )
    # the search's settings, trial-independent: resuming with others would mix two searches
    settings = search_settings(prepared.data_config, model_cfg, train_cfg, cfg)
    check_unchanged(experiment, settings)
    study_url, study_name = settings["search"]["study_storage"], settings["study_name"]
    fs, path = open_fs(experiment)
    on_ray = ray_storage(experiment)
    ray_path, ray_fs = on_ray["storage_path"], on_ray["storage_filesystem"]
    grid = space.is_grid(dims)
    if tune.Tuner.can_restore(ray_path, storage_filesystem=ray_fs):
        study = "" if grid else (f" (Optuna study {study_name!r} in {redact(study_url)}: "
                                 f"{study_counts(study_url, study_name)})")  # a grid has none
        print(f"[seqlab] resuming search {experiment}{study}", flush=True)
        tuner = tune.Tuner.restore(ray_path, trainable=trainable,
                                   resume_errored=True, storage_filesystem=ray_fs)
    else:
        listed = not grid and any(d.kind == "choice" for d in dims.values())
        namer = numbered_trial_name if listed else trial_name
        if grid:  # every combination once, all epochs: Tune's own grid, first in first out
            strategy = {"num_samples": 1}
        else:
            print(f"[seqlab] Optuna study {study_name!r} in {redact(study_url)} (to browse it: optuna-dashboard "
                  f"{redact(study_url)})", flush=True)
            strategy = {
                "num_samples": cfg.num_samples,
                # TPE by default; the study lives in a database, so an interrupted search continues it
                "search_alg": PersistentOptunaSearch(seed=train_cfg.seed, study_name=study_name,
                                                     storage=open_study_storage(study_url)),
                # rungs count epochs: a trial restored mid-way goes on at epoch k+1, while Tune's
                # training_iteration would start again at 1 and compare unlike things
                "scheduler": ASHAScheduler(time_attr="epoch", max_t=train_cfg.epochs,
                                           grace_period=cfg.grace_period, reduction_factor=cfg.reduction_factor)}
        tuner = tune.Tuner(
            trainable,
            param_space=space.to_tune(dims),
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode, max_concurrent_trials=cfg.max_concurrent, **strategy,
                trial_name_creator=namer, trial_dirname_creator=namer,
            ),
            # Tune's status tables go to the log; TrialStory tells each trial on the terminal (seqlab.console)
            run_config=tune.RunConfig(name=cfg.search_name, verbose=1, **ray_storage(storage), callbacks=[
                TrialStory(math.prod(len(d.values) for d in dims.values()) if grid else cfg.num_samples,
                           train_cfg.epochs, metric, mode, cfg.max_concurrent or cfg.num_samples)]),
        )
        fs.create_dir(path)
        with fs.open_output_stream(f"{path}/seqlab_search.json") as f:
            f.write(json.dumps(settings, indent=2).encode())
    return tuner.fit()
