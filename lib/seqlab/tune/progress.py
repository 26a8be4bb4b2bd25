"""A search's story, told from the driver: one line when a trial starts, one per epoch it reports,
one when it ends (finished, stopped early by ASHA, or failed), with the best so far and an ETA.

Ray Tune calls these hooks in the driver's process, where :mod:`seqlab.console` shows them; Tune's
own status tables go to the log file (``--verbose`` shows them too).
"""

from __future__ import annotations

import time

from ray.tune import Callback

from seqlab.console import duration
from seqlab.tune.space import trial_name


class TrialStory(Callback):
    """Tells each trial's progress as ``[seqlab] trial i/n NAME ...`` lines."""

    def __init__(self, total: int, epochs: int, metric: str, mode: str, concurrency: int):
        self.total, self.epochs, self.metric, self.mode = total, epochs, metric, mode
        self.concurrency = max(1, concurrency)
        self.numbers: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.last: dict[str, dict] = {}
        self.durations: list[float] = []  # of the trials that ended while this driver watched
        self.done = 0
        self.best: tuple[float, str] | None = None
        self._seen_restored = False

    def _label(self, trial) -> str:
        number = self.numbers.setdefault(trial.trial_id, len(self.numbers) + 1)
        return f"trial {number}/{self.total} {trial_name(trial.config)}"

    def _say(self, text: str) -> None:
        print(f"[seqlab] {text}", flush=True)

    def on_step_begin(self, iteration, trials, **info):
        if self._seen_restored:
            return
        self._seen_restored = True  # a resumed search: the trials that ended before count, numbered first
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                self._label(trial)
                self.done += 1
        if self.done:
            self._say(f"{self.done} of {self.total} trials ended before this search was resumed")

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.monotonic()
        self._say(f"{self._label(trial)} started")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.last[trial.trial_id] = result
        if self.metric in result:
            self._say(f"{self._label(trial)} epoch {result.get('epoch', '?')}/{self.epochs}: "
                      f"{self.metric} {result[self.metric]:.4f}")

    def _ended(self, trial) -> float:
        """Count a trial as ended; how long it ran while this driver watched."""
        took = time.monotonic() - self.started.get(trial.trial_id, time.monotonic())
        self.durations.append(took)
        self.done += 1
        return took

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = self.last.get(trial.trial_id, {})
        took = self._ended(trial)
        epoch = result.get("epoch")
        how = "finished" if epoch == self.epochs else f"stopped by ASHA after epoch {epoch}"
        value = result.get(self.metric)
        if value is not None and (self.best is None or (value > self.best[0] if self.mode == "max"
                                                        else value < self.best[0])):
            self.best = (value, f"trial {self.numbers[trial.trial_id]}")
        self._say(f"{self._label(trial)} {how} in {duration(took)}"
                  + (f": {self.metric} {value:.4f}" if value is not None else "") + self._standing())

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended(trial)
        self._say(f"{self._label(trial)} failed; its error is in the full log and in "
                  f"{getattr(trial, 'error_file', None) or 'its trial folder'}" + self._standing())

    def _standing(self) -> str:
        left = max(0, self.total - self.done)
        text = f"; {self.done} of {self.total} done"
        if self.best is not None:
            text += f", best {self.best[1]} ({self.metric} {self.best[0]:.4f})"
        if left and self.durations:
            mean = sum(self.durations) / len(self.durations)
            text += f", about {duration(mean * left / self.concurrency)} to go"
        return text
