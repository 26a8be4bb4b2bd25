"""Inference from a checkpoint folder, without Ray: used by ``seqlab predict``, evaluation and Serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqlab import checkpoint
from seqlab.metrics import confusion, from_confusion, per_class_f1
from seqlab.train import EncodedSplit, bucket_batches, collate


class TextClassifier:
    def __init__(self, path: str | Path, device: str = "cpu"):
        self.model, self.tokenizer, self.meta = checkpoint.load_model(Path(path), device=device)
        self.labels: list[str] = self.meta["labels"]
        self.device = torch.device(device)

    def encode(self, texts: list[str], labels: list[str] | None = None) -> EncodedSplit:
        ids, offsets = self.tokenizer.encode_many(texts)
        index = {lab: i for i, lab in enumerate(self.labels)}
        y = np.array([index.get(lab, -1) for lab in labels] if labels is not None else [0] * len(texts), np.int64)
        return EncodedSplit(ids, offsets, y)

    @torch.no_grad()
    def probabilities(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """(n, num_classes) class probabilities, in the order of ``texts``."""
        split = self.encode(texts)
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx in bucket_batches(split.lengths, batch_size, shuffle=False, pad_to_equal=False):
            b = collate(split, idx)
            logits = self.model(b["tokens"].to(self.device), b["lengths"].to(self.device))
            probs[idx] = torch.softmax(logits.float(), -1).cpu().numpy()
        return probs

    def predict(self, texts: list[str]) -> list[dict]:
        probs = self.probabilities(texts)
        return [{"label": self.labels[int(p.argmax())],
                 "probabilities": {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}} for p in probs]

    def evaluate(self, frame: pd.DataFrame) -> dict:
        """Accuracy, macro-F1 and per-class F1 on a frame with ``text`` and ``label`` columns."""
        index = {lab: i for i, lab in enumerate(self.labels)}
        y = frame["label"].map(index)
        if y.isna().any():
            raise ValueError(f"labels not known to the model: {sorted(frame['label'][y.isna()].unique())[:5]}")
        pred = self.probabilities(frame["text"].tolist()).argmax(-1)
        cm = confusion(y.to_numpy(np.int64), pred, len(self.labels))
        out = from_confusion(cm)
        out["per_class_f1"] = dict(zip(self.labels, per_class_f1(cm).round(4).tolist()))
        out["n"] = int(len(frame))
        return out
