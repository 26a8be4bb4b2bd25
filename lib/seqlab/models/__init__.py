"""Model registry: a plain dict from name to builder.

A builder takes the data-dependent sizes (``vocab_size``, ``num_classes``) and the model's
own keyword arguments, and returns an ``nn.Module`` whose ``forward(tokens, lengths)`` gives logits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch.nn as nn

from seqlab.errors import SeqlabError
from seqlab.models.lstm import LSTMClassifier

MODELS: dict[str, Callable[..., nn.Module]] = {
    "lstm": LSTMClassifier,
}


def build_model(name: str, **kwargs) -> nn.Module:
    if name not in MODELS:
        raise SeqlabError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    builder = MODELS[name]
    accepted = set(inspect.signature(builder).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise SeqlabError(f"model {name!r} has no option {unknown[0]!r}; options: {', '.join(sorted(accepted))}")
    return builder(**kwargs)
