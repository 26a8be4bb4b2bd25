"""Inference from a checkpoint folder, without Ray: used by ``seqlab predict``, evaluation and Serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqlab import checkpoint
from seqlab.errors import SeqlabError
from seqlab.tasks import EncodedSplit, encode, label_ids, make_task
from seqlab.train import bucket_batches, evaluate_stats


def model_label(card: dict, model: str) -> str:
    """``<dataset>[-<category>]-<model>``: how a trained model is named (Serve, a search's results folder)."""
    keep = card.get("keep_labels") or []
    return "-".join([card["name"], *(keep if len(keep) == 1 else []), model]).lower().replace(" ", "-")


class Predictor:
    """A checkpoint's model, tokenizer and task; ``evaluate`` works for every task."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        self.model, self.tokenizer, self.meta = checkpoint.load_model(Path(path), device=device)
        self.labels: list[str] = self.meta["labels"]
        self.task = make_task(self.meta["task"], len(self.labels))
        self.device = torch.device(device)

    @property
    def name(self) -> str:
        return model_label(self.meta["data"], self.meta["model"]["name"])

    def encode(self, texts: list[str], labels: list[str] | None = None) -> EncodedSplit:
        y = label_ids(labels, self.labels) if labels is not None else np.zeros(len(texts), np.int64)
        return encode(self.tokenizer, texts, y, self.task, max_len=self.meta.get("max_len", self.tokenizer.max_len))

    def evaluate(self, frame: pd.DataFrame) -> dict:
        """The task's metrics on a frame with ``text`` and ``label`` columns (classify: + per-class F1)."""
        unknown = sorted(set(frame["label"]) - set(self.labels))
        if unknown:
            raise SeqlabError(f"labels not known to the model: {unknown[:5]}")
        split = self.encode(frame["text"].tolist(), frame["label"].tolist())
        stats = evaluate_stats(self.model, split, self.task, device=self.device)
        return {**self.task.summarise(stats), **self.task.details(stats, self.labels), "n": int(len(frame))}

    @torch.no_grad()
    def probabilities(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """(n, num_classes) class probabilities, in the order of ``texts`` (classifiers)."""
        split = self.encode(texts)
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx in bucket_batches(split.lengths, batch_size, shuffle=False, pad_to_equal=False):
            b = {k: v.to(self.device) for k, v in self.task.collate(split, idx).items()}
            probs[idx] = torch.softmax(self.task.forward(self.model, b).float(), -1).cpu().numpy()
        return probs


class TextClassifier(Predictor):
    def __init__(self, path: str | Path, device: str = "cpu"):
        super().__init__(path, device)
        if self.meta["task"] != "classify":
            raise SeqlabError(f"{path} holds a {self.meta['model']['name']} text generator, not a classifier")

    def predict(self, texts: list[str]) -> list[dict]:
        probs = self.probabilities(texts)
        return [{"label": self.labels[int(p.argmax())],
                 "probabilities": {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}} for p in probs]


class TextGenerator(Predictor):
    def __init__(self, path: str | Path, device: str = "cpu"):
        super().__init__(path, device)
        if self.meta["task"] != "generate":
            raise SeqlabError(f"{path} holds a {self.meta['model']['name']} classifier, not a text generator")

    @property
    def conditional(self) -> bool:
        return bool(self.meta["model"]["kwargs"].get("conditional"))

    def generate(self, *, category: str | None = None, prompt: str = "", length: int = 300,
                 temperature: float = 0.5, n: int = 1, seed: int = 0) -> list[str]:
        """``n`` texts of up to ``length`` new characters; ``category`` is required by a conditional model."""
        from seqlab.models.charlm import sample

        index = None
        if category is not None:
            if category not in self.labels:
                raise SeqlabError(f"unknown category {category!r}; this model knows {', '.join(self.labels)}")
            index = self.labels.index(category)
        elif self.conditional:
            raise SeqlabError(f"this model is conditional: give a category, one of {', '.join(self.labels)}")
        return sample(self.model, self.tokenizer, n=n, length=length, temperature=temperature, prompt=prompt,
                      category=index if self.conditional else None, seed=seed, device=self.device)


def recognisability(classifier: TextClassifier, generated: dict[str, list[str]]) -> dict:
    """How often a classifier of real texts names the category each generated text imitates (seed 000)."""
    texts = [t for ts in generated.values() for t in ts]
    truth = [c for c, ts in generated.items() for _ in ts]
    pred = [classifier.labels[i] for i in classifier.probabilities(texts).argmax(-1)] if texts else []
    hits = [p == t for p, t in zip(pred, truth)]
    per_category = {c: float(np.mean([h for h, t in zip(hits, truth) if t == c])) for c in generated if generated[c]}
    return {"accuracy": float(np.mean(hits)) if hits else 0.0, "correct": int(sum(hits)), "n": len(hits),
            "per_category": per_category, "predicted": pred}
