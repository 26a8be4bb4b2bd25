"""Inference from a checkpoint folder, without Ray: the base of every task's predictor.

Used by ``seqlab predict|generate|sample``, test evaluation and Serve. Each task module adds its
own predictor with the methods that task serves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqlab import checkpoint
from seqlab.errors import SeqlabError
from seqlab.tasks import a, kind, make_task
from seqlab.tasks.batches import bucket_batches, evaluate_stats
from seqlab.tasks.encoding import EncodedSplit, label_ids


def model_label(card: dict, model: str) -> str:
    """``<dataset>[-<category>]-<model>``: how a trained model is named (Serve, a search's results folder)."""
    keep = card.get("keep_labels") or []
    return "-".join([card["name"], *(keep if len(keep) == 1 else []), model]).lower().replace(" ", "-")


class Predictor:
    """A checkpoint's model, tokenizer and task; ``evaluate`` works for every task."""

    task_name: str | None = None  # a task's predictor refuses checkpoints of other tasks

    def __init__(self, path: str | Path, device: str = "cpu"):
        self.model, self.tokenizer, self.meta = checkpoint.load_model(Path(path), device=device)
        if self.task_name and self.meta["task"] != self.task_name:
            raise SeqlabError(f"{path} holds a {self.meta['model']['name']} model, {a(kind(self.meta['task']))}; "
                              f"expected {a(kind(self.task_name))}")
        self.labels: list[str] = self.meta["labels"]
        self.task = make_task(self.meta["task"], len(self.labels))
        self.device = torch.device(device)

    @property
    def max_len(self) -> int:
        """Tokens per input, as in training."""
        return self.meta.get("max_len", self.tokenizer.max_len)

    @property
    def name(self) -> str:
        return model_label(self.meta["data"], self.meta["model"]["name"])

    def encode(self, frame: pd.DataFrame | list[str], labels: list[str] | None = None) -> EncodedSplit:
        """Texts, or a frame's rows (``text``; entity models: + ``start``, ``end``), as the task's sequences."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame({"text": list(frame)})
        y = label_ids(labels, self.labels) if labels is not None else np.zeros(len(frame), np.int64)
        features = None
        spec = self.meta["data"].get("features")
        if spec:  # LSTM+CA+feat: the same features, standardised with the training split's statistics
            from seqlab.data.features import mention_features

            raw = mention_features(frame["text"].tolist(), frame["start"].to_numpy(), frame["end"].to_numpy())
            features = (raw - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
        return self.task.encode_frame(self.tokenizer, frame, y, features=features, max_len=self.max_len)

    def evaluate(self, frame: pd.DataFrame) -> dict:
        """The task's metrics on a frame with ``text`` and ``label`` columns (classify: + per-class F1)."""
        unknown = sorted(set(frame["label"]) - set(self.labels))
        if unknown:
            raise SeqlabError(f"labels not known to the model: {unknown[:5]}")
        split = self.encode(frame, frame["label"].tolist())
        stats = evaluate_stats(self.model, split, self.task, device=self.device)
        return {**self.task.summarise(stats), **self.task.details(stats, self.labels), "n": int(len(frame))}

    @torch.no_grad()
    def outputs(self, frame: pd.DataFrame, batch_size: int = 128):
        """Per row, in the order of ``frame``: the model's output dict (entity models) or logits."""
        split = self.encode(frame)
        for idx in bucket_batches(split.lengths, batch_size, shuffle=False, pad_to_equal=False):
            b = {k: v.to(self.device) for k, v in self.task.collate(split, idx).items()}
            yield split, idx, self.task.forward(self.model, b)

    def probabilities(self, texts: list[str] | pd.DataFrame, batch_size: int = 128) -> np.ndarray:
        """(n, num_classes) class probabilities, in the order of ``texts`` (classifiers)."""
        frame = texts if isinstance(texts, pd.DataFrame) else pd.DataFrame({"text": list(texts)})
        probs = np.zeros((len(frame), len(self.labels)), dtype=np.float32)
        for _, idx, out in self.outputs(frame, batch_size):
            logits = out["logits"] if isinstance(out, dict) else out
            probs[idx] = torch.softmax(logits.float(), -1).cpu().numpy()
        return probs
