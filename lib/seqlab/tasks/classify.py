"""``classify``: one label per text. Training side, predictor, and the request Serve batches."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field

from seqlab.errors import BadInput
from seqlab.modules.losses import weighted_cross_entropy
from seqlab.tasks import Context, Task
from seqlab.tasks.encoding import EncodedSplit, encode, pad_rows
from seqlab.tasks.metrics import from_confusion, per_class, per_class_f1
from seqlab.tasks.predictor import Predictor

# ---- serving: request, response, checks ---------------------------------------------------------


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(description="texts to classify", examples=[["I was charged twice on my credit card."]])


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    model: str
    predictions: list[Prediction]


def check_texts(texts: list[str], *, max_texts: int, max_chars: int) -> None:
    """The request-level rules; raises ``BadInput`` naming the first text that breaks one."""
    if not texts:
        raise BadInput(422, "texts is empty; send at least one text")
    if len(texts) > max_texts:
        raise BadInput(413, f"{len(texts)} texts in one request; at most {max_texts} are allowed")
    for i, t in enumerate(texts):
        if not t.strip():
            raise BadInput(422, f"texts[{i}] is empty; every text needs at least one non-space character")
        if len(t) > max_chars:
            raise BadInput(413, f"texts[{i}] has {len(t)} characters; at most {max_chars} are allowed")



def check_request(request: ClassifyRequest, ctx: Context) -> None:
    check_texts(request.texts, max_texts=ctx.max_items, max_chars=ctx.max_chars)


def classify_many(model: TextClassifier, requests: list[ClassifyRequest], ctx: Context) -> list[dict]:
    """One forward pass over the texts of every request in a batch, split back per request."""
    flat = model.predict([t for r in requests for t in r.texts])
    out, start = [], 0
    for r in requests:
        out.append({"predictions": flat[start : start + len(r.texts)]})
        start += len(r.texts)
    return out


# ---- training ----------------------------------------------------------------------------------


class Classification(Task):
    name, kind, data = "classify", "classifier", "text"
    metric, mode = "val_macro_f1", "max"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.size = 1 + num_classes * num_classes  # length of stats()
        self.class_weights: torch.Tensor | None = None  # (num_classes,) training loss weights; None: all 1

    def weigh_classes(self, labels: np.ndarray) -> torch.Tensor:
        """Balanced loss weights from the training labels: n / (classes x count), 1 on average per example."""
        counts = np.bincount(labels, minlength=self.num_classes).astype(np.float64)
        weights = len(labels) / (self.num_classes * np.maximum(counts, 1.0))
        self.class_weights = torch.tensor(weights, dtype=torch.float32)
        return self.class_weights

    def encode_frame(self, tokenizer, frame, labels: np.ndarray, *, max_len: int, features=None) -> EncodedSplit:
        return encode(tokenizer, frame["text"], labels, self, max_len=max_len)

    def prepare(self, split: EncodedSplit, max_len: int) -> EncodedSplit:
        return split  # the tokenizer already kept the first max_len tokens

    def collate(self, split: EncodedSplit, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {"tokens": torch.from_numpy(pad_rows(split, idx)), "lengths": torch.from_numpy(split.lengths[idx]),
                "labels": torch.from_numpy(split.labels[idx])}

    def forward(self, model, batch):
        return model(batch["tokens"], batch["lengths"])  # (b, num_classes) logits

    def loss(self, logits, batch):
        return weighted_cross_entropy(logits, batch["labels"], self.class_weights)

    def stats(self, logits, batch) -> torch.Tensor:
        # [loss sum, confusion matrix (true, predicted) flattened]
        c = self.num_classes
        cells = torch.bincount(batch["labels"] * c + logits.argmax(-1), minlength=c * c)
        loss = F.cross_entropy(logits.float(), batch["labels"], reduction="sum")
        return torch.cat([loss.reshape(1).double(), cells.double()])

    def summarise(self, stats: torch.Tensor) -> dict[str, float]:
        cm = stats[1:].reshape(self.num_classes, self.num_classes).cpu().numpy()
        out = from_confusion(cm)
        out["loss"] = float(stats[0]) / max(float(cm.sum()), 1.0)
        return out

    def details(self, stats: torch.Tensor, labels: list[str]) -> dict:
        cm = stats[1:].reshape(self.num_classes, self.num_classes).cpu().numpy()
        pc = per_class(cm)
        return {"per_class_f1": dict(zip(labels, per_class_f1(cm).round(4).tolist())),
                "per_class": {lab: {k: round(float(v[i]), 4) for k, v in pc.items()} for i, lab in enumerate(labels)},
                "confusion": cm.astype(int).tolist()}


# ---- inference ---------------------------------------------------------------------------------


class TextClassifier(Predictor):
    task_name = "classify"

    def predict(self, texts: list[str]) -> list[dict]:
        probs = self.probabilities(texts)
        return [{"label": self.labels[int(p.argmax())],
                 "probabilities": {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}} for p in probs]


Classification.predictor = TextClassifier
