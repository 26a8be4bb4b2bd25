"""What a model learns and answers, once per task: batching, forward call, loss and metrics for
training; a predictor for inference; the request handlers that Serve routes to.

The training loop and evaluation call only the :class:`Task` methods, so no ``if model_type``
appears in them:

    batch = task.collate(split, idx)
    out = task.forward(model, batch)
    loss = task.loss(out, batch)
    stats += task.stats(out, batch)    # a 1-D float64 tensor, summed over batches and ranks
    metrics = task.summarise(stats)    # plain floats

``classify``: one label per text (the classifiers). ``generate``: next-character prediction
(the char-level generator); a sequence's label is its category, the conditional model's input.
``entity``: one label per entity mention, classified in its sentence (write-up 003); a row is the
sentence's ids plus the mention's token span (and hand-made features for LSTM+CA+feat).
``molecule``: generative models of SMILES (write-up 004); a row is one molecule's tokens.

A task's name is the key of :data:`TASKS`; models name their task in :data:`seqlab.models.MODELS`
and checkpoints in ``meta.json``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import torch

from seqlab.errors import SeqlabError

# name -> "module:Task class"; imported on use (a task module also holds its predictor and routes)
TASKS: dict[str, str] = {
    "classify": "seqlab.tasks.classify:Classification",
    "generate": "seqlab.tasks.generate:LanguageModel",
    "entity": "seqlab.tasks.entity:EntityClassification",
    "molecule": "seqlab.tasks.molecule:MoleculeGeneration",
}


class Task(Protocol):
    """The training side of a task. Hooks with a body are optional: a task keeps their default."""

    name: ClassVar[str]  # the key in TASKS
    kind: ClassVar[str]  # what a model of the task is called in messages: "classifier", ...
    data: ClassVar[str]  # the data it learns from: "text", "mentions" (text + start/end) or "molecules"
    metric: ClassVar[str]  # the validation metric that ranks checkpoints and trials
    mode: ClassVar[str]  # "max" or "min"
    size: int  # length of stats()

    def encode_frame(self, tokenizer, frame: pd.DataFrame, labels: np.ndarray, *, max_len: int,
                     features: np.ndarray | None = None): ...

    def collate(self, split, idx: np.ndarray) -> dict[str, torch.Tensor]: ...

    def forward(self, model, batch: dict): ...

    def loss(self, out, batch: dict) -> torch.Tensor: ...

    def stats(self, out, batch: dict) -> torch.Tensor: ...

    def summarise(self, stats: torch.Tensor) -> dict[str, float]: ...

    def details(self, stats: torch.Tensor, labels: list[str]) -> dict:
        """What a test report adds to the metrics (classifiers: F1 of each class)."""
        return {}

    def sampler(self, tokenizer, train_split, n: int) -> Callable[[torch.nn.Module, int], dict] | None:
        """``(model, seed) -> metrics`` measured on ``n`` samples at the end of each epoch (molecule
        generators: validity, uniqueness, novelty against ``train_split``), or None."""
        return None


@dataclass(frozen=True)
class Context:
    """What a served request may ask of a model, and the name it is served under."""

    key: str = "default"  # /v1/models/<key>/...
    max_items: int = 64  # texts, spans, molecules or latents per request
    max_chars: int = 20_000  # characters per text or SMILES


def _load(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def task_class(name: str) -> type:
    if name not in TASKS:
        raise SeqlabError(f"unknown task {name!r}; tasks are {', '.join(TASKS)}")
    return _load(TASKS[name])


def make_task(name: str, num_classes: int) -> Task:
    return task_class(name)(num_classes)


def kind(name: str) -> str:
    """'classifier', 'text generator', ...: what a model of task ``name`` is called."""
    return task_class(name).kind


def load_predictor(path, device: str = "cpu"):
    """The predictor of the checkpoint's task, with the methods that task serves."""
    from seqlab.checkpoint import read_meta

    name = read_meta(path).get("task", "classify")
    return task_class(name).predictor(path, device)


def a(noun: str) -> str:
    """``noun`` with its indefinite article: 'a classifier', 'an entity-mention classifier'."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
