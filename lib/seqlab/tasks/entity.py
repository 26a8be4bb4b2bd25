"""``entity``: one label per entity mention, classified in its sentence (write-up 003). Training
side, predictor, and the route that classifies a text's character spans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, Field

from seqlab.data.spans import split_sentences
from seqlab.errors import BadInput
from seqlab.modules.losses import cross_entropy
from seqlab.tasks import Context
from seqlab.tasks.classify import Classification
from seqlab.tasks.encoding import EncodedSplit, encode_mention, encode_mentions
from seqlab.tasks.predictor import Predictor

# ---- serving -----------------------------------------------------------------------------------


class CharSpan(BaseModel):
    start: int = Field(description="first character of the mention (0-based)")
    end: int = Field(description="one past its last character")


class EntityRequest(BaseModel):
    text: str = Field(description="a sentence or a whole document; each span is classified in its sentence",
                      examples=["IL-2 gene expression requires NF-kappa B in T cells."])
    spans: list[CharSpan] = Field(description="the mentions to classify", examples=[[{"start": 0, "end": 4}]])


class AttentionWeight(BaseModel):
    token: str
    weight: float
    mention: bool


class EntityPrediction(BaseModel):
    start: int
    end: int
    mention: str
    sentence: str
    label: str
    probabilities: dict[str, float]
    attention: list[AttentionWeight] | None = Field(None, description="LSTM+CA: weights over the sentence's tokens")


class EntityResponse(BaseModel):
    model: str
    entities: list[EntityPrediction]


def request_rows(text: str, spans: list[CharSpan], *, max_spans: int, max_chars: int) -> list[dict]:
    """Each span in its sentence, as the model's rows; raises ``BadInput`` for a bad span."""
    if not spans:
        raise BadInput(422, "spans is empty; send at least one {\"start\": ..., \"end\": ...}")
    if len(spans) > max_spans:
        raise BadInput(413, f"{len(spans)} spans in one request; at most {max_spans} are allowed")
    if len(text) > max_chars:
        raise BadInput(413, f"text has {len(text)} characters; at most {max_chars} are allowed")
    for i, sp in enumerate(spans):
        if not 0 <= sp.start < sp.end <= len(text):
            why = "is empty (start == end)" if sp.start == sp.end else f"is out of range (start {sp.start}, end {sp.end})"
            raise BadInput(422, f"spans[{i}] {why}; expected 0 <= start < end <= {len(text)}, the text's length")
        if not text[sp.start : sp.end].strip():
            raise BadInput(422, f"spans[{i}] ({sp.start}-{sp.end}) covers only white space")
    sentences = split_sentences(text, keep_together=[(sp.start, sp.end) for sp in spans])
    rows = []
    for sp in spans:
        a, b = next((a, b) for a, b in sentences if a <= sp.start < b)
        rows.append({"text": text[a:b], "start": sp.start - a, "end": sp.end - a})
    return rows



def classify_entities(model: EntityClassifier, request: EntityRequest, ctx: Context) -> dict:
    """The request's mentions, each classified in its sentence."""
    rows = request_rows(request.text, request.spans, max_spans=ctx.max_items, max_chars=ctx.max_chars)
    results = model.predict(pd.DataFrame(rows))
    return {"entities": [{"start": sp.start, "end": sp.end, "mention": request.text[sp.start : sp.end],
                          "sentence": row["text"], **res} for sp, row, res in zip(request.spans, rows, results)]}


# ---- training ----------------------------------------------------------------------------------


class EntityClassification(Classification):
    """A label per entity mention. Batches add ``spans`` (b, 2) and, when the split has them,
    ``features`` (b, f); models return ``{"logits", ...}`` (see :mod:`seqlab.models.entity`)."""

    name, kind, data = "entity", "entity-mention classifier", "mentions"

    def encode_frame(self, tokenizer, frame, labels: np.ndarray, *, max_len: int, features=None) -> EncodedSplit:
        if hasattr(tokenizer, "encode_rows"):  # the baseline's n-grams of the mention and its context words
            keep = np.flatnonzero(labels >= 0)
            rows = frame.iloc[keep]
            ids, offsets = tokenizer.encode_rows(rows["text"], rows["start"], rows["end"])
            return EncodedSplit(ids, offsets, labels[keep], spans=np.zeros((len(keep), 2), np.int64))
        return encode_mentions(tokenizer, frame["text"], frame["start"], frame["end"], labels, max_len=max_len,
                               features=features)

    def collate(self, split: EncodedSplit, idx: np.ndarray) -> dict[str, torch.Tensor]:
        batch = super().collate(split, idx)
        batch["spans"] = torch.from_numpy(split.spans[idx])
        if split.features is not None:
            batch["features"] = torch.from_numpy(split.features[idx])
        return batch

    def forward(self, model, batch):
        return model(batch["tokens"], batch["lengths"], batch["spans"], batch.get("features"))

    def loss(self, out, batch):
        return cross_entropy(out, batch["labels"], self.class_weights)

    def stats(self, out, batch) -> torch.Tensor:
        return super().stats(out["logits"], batch)


# ---- inference ---------------------------------------------------------------------------------


class EntityClassifier(Predictor):
    """An entity-mention model: each mention's label, probabilities and, for LSTM+CA, the attention
    its context words got."""

    task_name = "entity"

    def predict(self, frame: pd.DataFrame) -> list[dict]:
        """Rows ``text`` (the sentence), ``start``, ``end`` -> one result per row."""
        results: list[dict] = [{} for _ in range(len(frame))]
        for split, idx, out in self.outputs(frame):
            probs = torch.softmax(out["logits"].float(), -1).cpu().numpy()
            attention = out.get("context_attention")
            for row, i in enumerate(idx):
                p = probs[row]
                results[i] = {"label": self.labels[int(p.argmax())],
                              "probabilities": {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}}
                if attention is not None:
                    text, a, b = frame["text"].iloc[i], int(frame["start"].iloc[i]), int(frame["end"].iloc[i])
                    words, s, e = encode_mention(self.tokenizer, text, a, b, self.max_len, words=True)
                    weights = attention[row, : len(words)].float().cpu().numpy()
                    results[i]["attention"] = [{"token": w, "weight": round(float(x), 4), "mention": s <= k < e}
                                               for k, (w, x) in enumerate(zip(words, weights))]
        return results


EntityClassification.predictor = EntityClassifier
