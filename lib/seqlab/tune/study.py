"""The Optuna study of a search: where it lives, opening it, and resuming it with Ray Tune."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from ray.tune.search.optuna import OptunaSearch

from seqlab.config import SearchConfig
from seqlab.errors import SeqlabError
from seqlab.storage import is_remote, seqlab_home


def study_storage(cfg: SearchConfig, experiment: str) -> str:
    """The Optuna study's database URL: ``--study-storage``, else SQLite next to a local search (or
    under ``$SEQLAB_HOME/studies`` for an ``s3://`` search; use PostgreSQL for a study that must
    outlive the head node)."""
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
