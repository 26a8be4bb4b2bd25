"""Ray Tune + Optuna (TPE) search over LSTM width and dropout, with ASHA early stopping.

Ray Train V2: each trial runs :func:`trial_driver`, which builds a ``TorchTrainer`` through the
same :func:`seqlab.runner.fit` as the train job; a ``TuneReportCallback`` forwards the workers'
per-epoch reports to Tune, so ASHA can stop a trial between epochs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pyarrow.fs as pa_fs
from ray.tune.search.optuna import OptunaSearch

from seqlab.config import ModelConfig, SearchConfig, TrainConfig
from seqlab.errors import SeqlabError
from seqlab.models import MODELS, entry
from seqlab.runner import fit
from seqlab.storage import is_remote, join, open_fs, ray_storage, to_uri
from seqlab.tasks import make_task


def search_space(cfg: SearchConfig) -> dict:
    """The searched hyperparameters, as data: log-uniform width, uniform dropout, optional lr; or the
    listed values (``--hidden-values``/``--dropout-values``), every combination of them with ``--grid``."""
    from ray import tune

    hidden, dropout = cfg.values("hidden"), cfg.values("dropout")
    pick = tune.grid_search if cfg.grid else tune.choice
    space = {"hidden": pick([int(h) for h in hidden]) if hidden else tune.lograndint(cfg.hidden_min, cfg.hidden_max + 1),
             "dropout": pick(dropout) if dropout else tune.uniform(cfg.dropout_min, cfg.dropout_max)}
    if cfg.search_lr:
        space["lr"] = tune.loguniform(3e-4, 1e-2)
    return space


def check_searchable(model: str) -> None:
    if not {"hidden", "dropout"} <= set(entry(model).options()):
        searchable = [m for m, e in MODELS.items() if {"hidden", "dropout"} <= set(e.options())]
        raise SeqlabError(f"model {model!r} has no LSTM width to search; searchable models: {', '.join(searchable)}")


def objective(task_name: str, cfg: SearchConfig, train_cfg: TrainConfig) -> tuple[str, str]:
    """The metric the search optimises and its direction."""
    task = make_task(task_name, 2)
    if cfg.objective == "default":
        return task.metric, task.mode
    if task_name != "molecule":
        raise SeqlabError("--objective chem scores sampled molecules; it needs a molecule model "
                          "(smiles-vae, smiles-rnn, smiles-ae)")
    if train_cfg.sample_molecules < 1:
        raise SeqlabError("--objective chem needs --sample-molecules >= 1 (molecules sampled per epoch)")
    return "val_chem_score", "max"


def trial_name(trial) -> str:
    # Named from the config alone (Tune's trial ids are random): the seeded sampler makes it repeatable
    c = trial.config
    name = f"h{int(c['hidden']):03d}-do{c['dropout']:.4f}"
    return name + (f"-lr{c['lr']:.1e}" if "lr" in c else "")


def numbered_trial_name(trial) -> str:
    # choosing from listed values, TPE can pick one config twice: Tune's trial counter tells them apart
    return f"{trial_name(trial)}-t{trial.experiment_tag.split('_', 1)[0]}"


def trial_driver(config: dict, *, inputs: dict, model_cfg: ModelConfig, train_cfg: TrainConfig, trials_path: str,
                 metric: tuple[str, str]):
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    mc = dataclasses.replace(model_cfg, hidden=int(config["hidden"]), dropout=float(config["dropout"]))
    tc = dataclasses.replace(train_cfg, lr=float(config["lr"]) if "lr" in config else train_cfg.lr)
    fit(inputs, mc, tc, name=tune.get_context().get_trial_name(), storage_path=trials_path,
        callbacks=[TuneReportCallback()], metric=metric)


def study_storage(cfg: SearchConfig, experiment: str) -> str:
    """The Optuna study's database URL: ``--study-storage``, else SQLite next to a local search (or
    under ``$SEQLAB_HOME/studies`` for an ``s3://`` search; use PostgreSQL for a study that must
    outlive the head node)."""
    from seqlab.data import seqlab_home

    if cfg.study_storage:
        return cfg.study_storage
    if is_remote(experiment):
        folder = seqlab_home() / "studies"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / cfg.search_name}.db"
    Path(experiment).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{experiment}/optuna.db"


def redact(url: str) -> str:
    """A database URL without its password, for logs."""
    head, at, tail = url.rpartition("@")
    return f"{head.split(':', 2)[0]}:{head.split(':', 2)[1]}:***@{tail}" if at and head.count(":") >= 2 else url


def open_study_storage(url: str):
    """Optuna's database storage at ``url``, connected now: a missing driver or an unreachable
    database is a one-line error naming the URL (password hidden), not a traceback mid-search."""
    import optuna
    import sqlalchemy.exc

    try:
        # pre-ping: a connection the database dropped (a restart) is replaced, not used and failed
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except ImportError as e:
        raise SeqlabError(f"study storage {redact(url)}: no database driver for it is installed ({e}); seqlab "
                          f"comes with the SQLite and PostgreSQL (psycopg) ones") from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise SeqlabError(f"cannot open the Optuna study storage {redact(url)}: {reason}; expected a reachable "
                          f"database URL (sqlite:///path.db or postgresql://user:password@host:port/db)") from None


def study_trials(url: str, name: str) -> list | None:
    """The trials of Optuna study ``name`` in the database at ``url``; None when it has no such study yet."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=open_study_storage(url)).get_trials(deepcopy=False)
    except KeyError:
        return None


def study_counts(url: str, name: str) -> str:
    trials = study_trials(url, name)
    if trials is None:
        return "not created yet"
    states = pd.Series([t.state.name.lower() for t in trials]).value_counts()
    return ", ".join(f"{n} {s}" for s, n in states.items()) or "no trials"


class PersistentOptunaSearch(OptunaSearch):
    """Ray's ``OptunaSearch`` on a persistent study that tolerates a resumed search re-reporting a
    trial the study already finished (the search's own state is saved every few seconds; the study
    database at once)."""

    def _finished(self, trial_id: str) -> bool:
        ot_trial = self._ot_trials.get(trial_id)
        return ot_trial is not None and self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished()

    def on_trial_result(self, trial_id: str, result: dict):
        if not self._finished(trial_id):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if self._finished(trial_id):
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result, error)


def run_search(inputs: dict, model_cfg: ModelConfig, train_cfg: TrainConfig, cfg: SearchConfig):
    """Run (or resume) the search named ``cfg.search_name``; returns the ``ResultGrid``."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    check_searchable(model_cfg.model)
    metric, mode = objective(inputs["task"], cfg, train_cfg)
    storage = train_cfg.resolved_storage()
    experiment = join(storage, cfg.search_name)
    trainable = tune.with_resources(
        tune.with_parameters(trial_driver, inputs=inputs, model_cfg=model_cfg, train_cfg=train_cfg,
                             trials_path=join(experiment, "trials"), metric=(metric, mode)),
        # The driver only waits on its TorchTrainer, whose workers hold the CPUs/GPUs. Tune refuses
        # an all-zero bundle, so the driver asks for a little memory and no CPU.
        {"cpu": 0, "memory": 64 * 1024**2},
    )
    # the search's settings, trial-independent: resuming with others would mix two searches
    study_url = study_storage(cfg, experiment)
    sig = {"search": dataclasses.asdict(cfg) | {"results_dir": None, "study_storage": study_url},
           "data": inputs["data_config"],
           "model": dataclasses.asdict(model_cfg) | {"hidden": None, "dropout": None},
           "train": dataclasses.asdict(train_cfg) | {"storage_path": None}}
    fs, path = open_fs(experiment)
    on_ray = ray_storage(experiment)
    ray_path, ray_fs = on_ray["storage_path"], on_ray["storage_filesystem"]
    sig_path = f"{path}/seqlab_search.json"
    if tune.Tuner.can_restore(ray_path, storage_filesystem=ray_fs):
        if fs.get_file_info(sig_path).type == pa_fs.FileType.File:
            with fs.open_input_stream(sig_path) as f:
                if json.loads(f.read()) != json.loads(json.dumps(sig)):
                    raise SeqlabError(f"search {experiment} was started with other settings; keep them to resume "
                                      f"it, or choose a new --search-name")
        study = "" if cfg.grid else (f" (Optuna study {cfg.search_name!r} in {redact(study_url)}: "
                                     f"{study_counts(study_url, cfg.search_name)})")  # a grid has none
        print(f"[seqlab] resuming search {experiment}{study}", flush=True)
        tuner = tune.Tuner.restore(ray_path, trainable=trainable,
                                   resume_errored=True, storage_filesystem=ray_fs)
    else:
        listed = not cfg.grid and (cfg.values("hidden") or cfg.values("dropout"))
        namer = numbered_trial_name if listed else trial_name
        if cfg.grid:  # every combination once, all epochs: Tune's own grid, first in first out
            strategy = {"num_samples": 1}
        else:
            strategy = {
                "num_samples": cfg.num_samples,
                # TPE by default; the study lives in a database, so an interrupted search continues it
                "search_alg": PersistentOptunaSearch(seed=train_cfg.seed, study_name=cfg.search_name,
                                                     storage=open_study_storage(study_url)),
                "scheduler": ASHAScheduler(time_attr="training_iteration", max_t=train_cfg.epochs,
                                           grace_period=cfg.grace_period, reduction_factor=cfg.reduction_factor)}
        tuner = tune.Tuner(
            trainable,
            param_space=search_space(cfg),
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode, max_concurrent_trials=cfg.max_concurrent, **strategy,
                trial_name_creator=namer, trial_dirname_creator=namer,
            ),
            run_config=tune.RunConfig(name=cfg.search_name, verbose=1, **ray_storage(storage)),
        )
        fs.create_dir(path)
        with fs.open_output_stream(sig_path) as f:
            f.write(json.dumps(sig, indent=2).encode())
    return tuner.fit()


def summarise(grid, epochs: int, metric: str, mode: str) -> pd.DataFrame:
    """One row per trial: its config, its best epoch by the metric and that epoch's checkpoint."""
    rows = []
    for result in grid:
        df = result.metrics_dataframe
        if df is None or metric not in df or df[metric].isna().all():
            rows.append({"trial": result.path.rsplit("/", 1)[-1], "status": "error", "error": str(result.error)})
            continue
        best = df.loc[df[metric].idxmax() if mode == "max" else df[metric].idxmin()]
        cfg = result.config
        rows.append({
            "trial": result.path.rsplit("/", 1)[-1],
            "hidden": int(cfg["hidden"]), "dropout": round(float(cfg["dropout"]), 4),
            **({"lr": float(cfg["lr"])} if "lr" in cfg else {}),
            "epochs_run": int(df["epoch"].max()),
            "stopped_early": bool(df["epoch"].max() < epochs),
            "best_epoch": int(best["epoch"]),
            metric: round(float(best[metric]), 4),
            **{k: round(float(best[k]), 4) for k in df.columns if k.startswith("val_") and k != metric},
            "train_time_s": round(float(df["epoch_time_s"].sum()), 1),
            "checkpoint": to_uri(best["checkpoint_path"], result.filesystem) if best.get("checkpoint_path") else None,
            "status": "error" if result.error else "ok",
        })
    out = pd.DataFrame(rows)
    if metric in out:
        out = out.sort_values(metric, ascending=mode == "min", na_position="last")
    return out.reset_index(drop=True)


def plot(summary: pd.DataFrame, path: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import NullFormatter

    ok = summary[summary["status"] == "ok"]
    widths = [2**k for k in range(3, 11) if ok["hidden"].min() / 2 < 2**k < ok["hidden"].max() * 2]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    name = metric.replace("_", " ")
    sc = axes[0].scatter(ok["hidden"], ok["dropout"], c=ok[metric], s=80, cmap="viridis", edgecolors="k")
    axes[0].set(xscale="log", xlabel="LSTM width (log)", ylabel="dropout", title=f"trials, colour = {name}")
    fig.colorbar(sc, ax=axes[0])
    for ax, col, xlabel, log in ((axes[1], "hidden", "LSTM width (log)", True), (axes[2], "dropout", "dropout", False)):
        for stopped, marker, label in ((False, "o", "ran all epochs"), (True, "x", "stopped by ASHA")):
            part = ok[ok["stopped_early"] == stopped]
            ax.scatter(part[col], part[metric], marker=marker, label=label)
        ax.set(xscale="log" if log else "linear", xlabel=xlabel, ylabel=f"best {name}")
        ax.grid(alpha=0.3)
    for ax in axes[:2]:  # plain power-of-two ticks on the log width axes
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[1].legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(summary: pd.DataFrame, out_dir: Path, metric: str, extra: dict) -> dict:
    """``search.csv``, ``search.png`` and ``best.json`` (the best trial and its checkpoint)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "search.csv", index=False)
    ok = summary[summary["status"] == "ok"]
    if ok.empty:
        raise SeqlabError(f"no trial of the search finished an epoch; see the trial errors in {out_dir}/search.csv")
    plot(summary, out_dir / "search.png", metric)
    best = {"metric": metric, **{k: (v.item() if hasattr(v, "item") else v) for k, v in ok.iloc[0].items()}, **extra}
    (out_dir / "best.json").write_text(json.dumps(best, indent=2))
    return best
