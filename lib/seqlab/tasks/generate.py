"""``generate``: next-character prediction (the char-level generator). Training side, predictor,
and the generation route."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field

from seqlab.errors import SeqlabError
from seqlab.modules.losses import lm_loss
from seqlab.tasks import Context, Task
from seqlab.tasks.classify import TextClassifier
from seqlab.tasks.encoding import EncodedSplit, encode, gather, pad_rows
from seqlab.tasks.predictor import Predictor

# ---- serving -----------------------------------------------------------------------------------


class GenerateRequest(BaseModel):
    category: str | None = Field(None, description="category to imitate (required by a conditional model)",
                                 examples=["Acne"])
    prompt: str = Field("", max_length=1000, description="text the generated text continues")
    length: int = Field(300, ge=1, le=2000, description="most characters to generate")
    temperature: float = Field(0.5, gt=0, le=5, description="sampling temperature ('diversity'; 0.5 in write-up 000)")
    n: int = Field(1, ge=1, le=16, description="texts to generate")
    seed: int = Field(0, ge=0, description="random seed; the same request and seed give the same texts")
    stream: bool = Field(False, description="answer as Server-Sent Events, characters as they are sampled: an event "
                                            "'start', then one 'delta' per step ({\"texts\": [the new character of "
                                            "each text]}), then 'done' with the whole answer")


class GenerateResponse(BaseModel):
    model: str
    category: str | None
    texts: list[str]



def generate(model: TextGenerator, request: GenerateRequest, ctx: Context) -> dict:
    texts = model.generate(category=request.category, prompt=request.prompt, length=request.length,
                           temperature=request.temperature, n=request.n, seed=request.seed)
    return {"category": request.category, "texts": texts}


def generate_stream(model: TextGenerator, request: GenerateRequest, ctx: Context) -> Iterator[tuple[str, dict]]:
    """The streamed form of :func:`generate`, as events: ``start``, a ``delta`` per step (the character
    each text gained), ``done`` (the answer :func:`generate` gives). A bad request raises here, before
    any event."""
    steps = model.stream(category=request.category, prompt=request.prompt, length=request.length,
                         temperature=request.temperature, n=request.n, seed=request.seed)
    return _events(request, steps)


def _events(request: GenerateRequest, steps: Iterator[list[str]]) -> Iterator[tuple[str, dict]]:
    yield "start", {"category": request.category, "prompt": request.prompt, "n": request.n}
    texts = [request.prompt] * request.n
    for chars in steps:
        texts = [t + c for t, c in zip(texts, chars)]
        yield "delta", {"texts": chars}
    yield "done", {"category": request.category, "texts": texts}


# ---- training ----------------------------------------------------------------------------------


class LanguageModel(Task):
    """Next-token prediction over ``<bos> text <eos>``: inputs drop the last id, targets the first."""

    name, kind, data = "generate", "text generator", "text"
    metric, mode = "val_nats_per_char", "min"
    size = 3  # length of stats()

    def __init__(self, num_classes: int = 0):
        pass  # a sequence's label is its category, an input of the conditional model

    def encode_frame(self, tokenizer, frame, labels: np.ndarray, *, max_len: int, features=None) -> EncodedSplit:
        return encode(tokenizer, frame["text"], labels, self, max_len=max_len)

    def prepare(self, split: EncodedSplit, max_len: int) -> EncodedSplit:
        """Cut each ``<bos> text <eos>`` into windows of ``max_len`` predictions (``max_len + 1`` ids).

        Consecutive windows share one id, so every character is predicted exactly once, and all of
        a text is used however long it is (truncated back-propagation through time).
        """
        starts, ends, labels = [], [], []
        for i in range(len(split)):
            a, b = int(split.offsets[i]), int(split.offsets[i + 1])
            for s in range(a, b - 1, max_len):
                starts.append(s)
                ends.append(min(s + max_len + 1, b))
                labels.append(split.labels[i])
        return gather(split.ids, np.array(starts, np.int64), np.array(ends, np.int64), np.array(labels, np.int64))

    def collate(self, split: EncodedSplit, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {"tokens": torch.from_numpy(pad_rows(split, idx, stop=-1)),
                "targets": torch.from_numpy(pad_rows(split, idx, start=1, fill=-100)),
                "lengths": torch.from_numpy(split.lengths[idx] - 1),
                "labels": torch.from_numpy(split.labels[idx])}

    def forward(self, model, batch):
        return model(batch["tokens"], batch["lengths"], batch["labels"])  # (b, t, vocab) logits

    def loss(self, logits, batch):
        return lm_loss(logits, batch["targets"])

    def stats(self, logits, batch) -> torch.Tensor:
        # [nats summed over predicted characters, characters, correct argmax predictions]
        targets = batch["targets"].flatten()
        flat = logits.float().flatten(0, 1)
        loss = F.cross_entropy(flat, targets, ignore_index=-100, reduction="sum")
        real = targets != -100
        correct = (flat.argmax(-1) == targets)[real].sum()
        return torch.stack([loss.double(), real.sum().double(), correct.double()])

    def summarise(self, stats: torch.Tensor) -> dict[str, float]:
        nats, chars, correct = (float(x) for x in stats)
        per_char = nats / max(chars, 1)
        return {"loss": per_char, "nats_per_char": per_char, "bits_per_char": per_char / math.log(2),
                "char_accuracy": correct / max(chars, 1)}


# ---- inference ---------------------------------------------------------------------------------


class TextGenerator(Predictor):
    task_name = "generate"

    @property
    def conditional(self) -> bool:
        return bool(self.meta["model"]["kwargs"].get("conditional"))

    def generate(self, *, category: str | None = None, prompt: str = "", length: int = 300,
                 temperature: float = 0.5, n: int = 1, seed: int = 0) -> list[str]:
        """``n`` texts of up to ``length`` new characters; ``category`` is required by a conditional model."""
        from seqlab.models.charlm import sample

        return sample(self.model, self.tokenizer, **self._sampling(category, prompt, length, temperature, n, seed))

    def stream(self, *, category: str | None = None, prompt: str = "", length: int = 300,
               temperature: float = 0.5, n: int = 1, seed: int = 0) -> Iterator[list[str]]:
        """The texts of :meth:`generate` as they are sampled: after each step, the character each of
        the ``n`` texts gained (``""`` once it has ended); the prompt is not repeated. A bad category
        raises here, before the first step."""
        from seqlab.models.charlm import stream

        return stream(self.model, self.tokenizer, **self._sampling(category, prompt, length, temperature, n, seed))

    def _sampling(self, category, prompt, length, temperature, n, seed) -> dict:
        index = None
        if category is not None:
            if category not in self.labels:
                raise SeqlabError(f"unknown category {category!r}; this model knows {', '.join(self.labels)}")
            index = self.labels.index(category)
        elif self.conditional:
            raise SeqlabError(f"this model is conditional: give a category, one of {', '.join(self.labels)}")
        return {"n": n, "length": length, "temperature": temperature, "prompt": prompt,
                "category": index if self.conditional else None, "seed": seed, "device": self.device}


def recognisability(classifier: TextClassifier, generated: dict[str, list[str]]) -> dict:
    """How often a classifier of real texts names the category each generated text imitates (seed 000)."""
    texts = [t for ts in generated.values() for t in ts]
    truth = [c for c, ts in generated.items() for _ in ts]
    pred = [classifier.labels[i] for i in classifier.probabilities(texts).argmax(-1)] if texts else []
    hits = [p == t for p, t in zip(pred, truth)]
    per_category = {c: float(np.mean([h for h, t in zip(hits, truth) if t == c])) for c in generated if generated[c]}
    return {"accuracy": float(np.mean(hits)) if hits else 0.0, "correct": int(sum(hits)), "n": len(hits),
            "per_category": per_category, "predicted": pred}


LanguageModel.predictor = TextGenerator
