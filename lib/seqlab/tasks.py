"""What a model learns: batching, forward call, loss and validation metrics, once per task.

The training loop and evaluation call only these methods, so no ``if model_type`` appears in them:

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.errors import SeqlabError
from seqlab.metrics import from_confusion, per_class, per_class_f1
from seqlab.tokenizer import ragged


@dataclass
class EncodedSplit:
    ids: np.ndarray  # (total_tokens,) int32
    offsets: np.ndarray  # (n + 1,) int64
    labels: np.ndarray  # (n,) int64
    spans: np.ndarray | None = None  # (n, 2) int64: an entity mention's token positions [start, end)
    features: np.ndarray | None = None  # (n, f) float32: hand-made features of the mention

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def pad_rows(split: EncodedSplit, idx: np.ndarray, *, start: int = 0, stop: int = 0, fill: int = 0) -> np.ndarray:
    """(len(idx), longest) int64 matrix of the sequences ``idx``, each cut to ``[start, len + stop)``."""
    lengths = split.lengths[idx] - start + stop
    out = np.full((len(idx), int(lengths.max())), fill, dtype=np.int64)
    for row, i in enumerate(idx):
        seq = split.ids[split.offsets[i] + start : split.offsets[i + 1] + stop]
        out[row, : len(seq)] = seq
    return out


def gather(ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, labels: np.ndarray) -> EncodedSplit:
    """A new split of the pieces ``ids[starts[i]:ends[i]]``."""
    pieces = [ids[a:b] for a, b in zip(starts, ends)]
    offsets = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
    flat = np.concatenate(pieces).astype(np.int32) if pieces else np.zeros(0, np.int32)
    return EncodedSplit(flat, offsets, labels)


def label_ids(values, labels: list[str]) -> np.ndarray:
    """Index of each label in ``labels``; -1 for a label the model does not know."""
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([index.get(v, -1) for v in values], dtype=np.int64)


def encode(tokenizer, texts, labels: np.ndarray, task, *, max_len: int) -> EncodedSplit:
    """Texts -> the task's training sequences; rows whose label is -1 (unknown) are dropped."""
    ids, offsets = tokenizer.encode_many(list(texts))
    keep = np.flatnonzero(labels >= 0)
    split = gather(ids, offsets[keep], offsets[keep + 1], labels[keep])
    return task.prepare(split, max_len)


def encode_mention(tokenizer, text: str, start: int, end: int, max_len: int, *, words: bool = False
                   ) -> tuple[list, int, int]:
    """A sentence's ids and the mention's token span ``[a, b)`` in them, at most ``max_len`` ids.

    The sentence is tokenised in three pieces (left, mention, right), so the span is exact however
    the tokenizer splits words. A long sentence keeps the window around the mention. ``words``
    gives the tokens' strings instead of their ids (to show attention weights).
    """
    pieces, (prefix, suffix), unk = tokenizer.pieces, tokenizer.specials, tokenizer.unk_id
    if words:
        pieces, unk = tokenizer.words, "<unk>"
        prefix, suffix = ["[CLS]"] * len(prefix), ["[SEP]"] * len(suffix)
    budget = max_len - len(prefix) - len(suffix)
    left, right = pieces(text[:start]), pieces(text[end:])
    mid = (pieces(text[start:end]) or [unk])[:budget]
    room = budget - len(mid)
    n_left = min(len(left), max(room // 2, room - len(right)))
    n_right = min(len(right), room - n_left)
    ids = prefix + left[len(left) - n_left:] + mid + right[:n_right] + suffix
    a = len(prefix) + n_left
    return ids, a, a + len(mid)


def encode_mentions(tokenizer, texts, starts, ends, labels: np.ndarray, *, max_len: int,
                    features: np.ndarray | None = None) -> EncodedSplit:
    """Mentions in their sentences -> an :class:`EncodedSplit` with spans; label -1 rows are dropped."""
    keep = np.flatnonzero(labels >= 0)
    texts, starts, ends = list(texts), np.asarray(starts), np.asarray(ends)
    rows = [encode_mention(tokenizer, texts[i], int(starts[i]), int(ends[i]), max_len) for i in keep]
    ids, offsets = ragged([r[0] for r in rows])
    spans = np.array([r[1:] for r in rows], dtype=np.int64).reshape(-1, 2)
    return EncodedSplit(ids, offsets, labels[keep], spans=spans,
                        features=None if features is None else np.asarray(features, np.float32)[keep])


class Classification:
    metric, mode = "val_macro_f1", "max"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.size = 1 + num_classes * num_classes  # length of stats()

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
        return F.cross_entropy(logits.float(), batch["labels"])

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
        """What a test report adds to the metrics: F1 of each class."""
        cm = stats[1:].reshape(self.num_classes, self.num_classes).cpu().numpy()
        pc = per_class(cm)
        return {"per_class_f1": dict(zip(labels, per_class_f1(cm).round(4).tolist())),
                "per_class": {lab: {k: round(float(v[i]), 4) for k, v in pc.items()} for i, lab in enumerate(labels)},
                "confusion": cm.astype(int).tolist()}


class LanguageModel:
    """Next-token prediction over ``<bos> text <eos>``: inputs drop the last id, targets the first."""

    metric, mode = "val_nats_per_char", "min"
    size = 3  # length of stats()

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
        from seqlab.models.charlm import lm_loss

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

    def details(self, stats: torch.Tensor, labels: list[str]) -> dict:
        return {}


class EntityClassification(Classification):
    """A label per entity mention. Batches add ``spans`` (b, 2) and, when the split has them,
    ``features`` (b, f); models return ``{"logits", ...}`` (see :mod:`seqlab.models.entity`)."""

    def encode_frame(self, tokenizer, frame, labels: np.ndarray, *, max_len: int, features=None) -> EncodedSplit:
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
        from seqlab.models.entity import cross_entropy

        return cross_entropy(out, batch["labels"])

    def stats(self, out, batch) -> torch.Tensor:
        return super().stats(out["logits"], batch)


class MoleculeGeneration:
    """Generative models of SMILES (:mod:`seqlab.models.molecule`): a row is ``<bos> tokens <eos>``.

    The loss is the negative ELBO per molecule (reconstruction only for the autoencoder and the
    CharRNN). Validation also reports teacher-forced token accuracy and the share of molecules
    whose every token is right; :meth:`epoch_metrics` adds what chemists judge a generator by,
    measured with RDKit on molecules sampled at the end of each epoch.
    """

    metric, mode = "val_loss", "min"
    size = 6  # length of stats()

    def encode_frame(self, tokenizer, frame, labels: np.ndarray, *, max_len: int, features=None) -> EncodedSplit:
        ids, offsets = tokenizer.encode_many(frame["text"])
        lengths = np.diff(offsets) - 2
        if len(lengths) and lengths.max() > max_len:
            i = int(lengths.argmax())
            raise SeqlabError(f"SMILES {frame['text'].iloc[i]!r} has {int(lengths[i])} tokens, more than --max-len "
                              f"{max_len}; raise --max-len")
        return EncodedSplit(ids, offsets, np.zeros(len(offsets) - 1, np.int64))

    def prepare(self, split: EncodedSplit, max_len: int) -> EncodedSplit:
        return split

    def collate(self, split: EncodedSplit, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {"tokens": torch.from_numpy(pad_rows(split, idx)),
                "targets": torch.from_numpy(pad_rows(split, idx, start=1, fill=-100)),
                "lengths": torch.from_numpy(split.lengths[idx])}

    def forward(self, model, batch):
        return model(batch["tokens"], batch["lengths"])

    def loss(self, out, batch):
        from seqlab.models.molecule import elbo_loss

        return elbo_loss(out, batch["targets"])

    def stats(self, out, batch) -> torch.Tensor:
        # [reconstruction nats, KL nats, predicted tokens, right tokens, molecules, all-right molecules]
        from seqlab.models.molecule import kl_terms

        targets = batch["targets"]
        logits = out["logits"].float()
        recon = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum")
        real = targets != -100
        right = (logits.argmax(-1) == targets) & real
        kl = kl_terms(out["mu"].float(), out["logvar"].float()).sum() if out.get("mu") is not None else recon * 0
        whole = (right.sum(1) == real.sum(1)).sum()
        return torch.stack([recon.double(), kl.double(), real.sum().double(), right.sum().double(),
                            torch.tensor(len(targets), dtype=torch.float64, device=recon.device), whole.double()])

    def summarise(self, stats: torch.Tensor) -> dict[str, float]:
        recon, kl, tokens, right, mols, whole = (float(x) for x in stats)
        mols = max(mols, 1.0)
        return {"loss": (recon + kl) / mols, "recon": recon / mols, "kl": kl / mols,
                "token_accuracy": right / max(tokens, 1.0), "teacher_forced_exact": whole / mols}

    def details(self, stats: torch.Tensor, labels: list[str]) -> dict:
        return {}

    def epoch_metrics(self, model, tokenizer, known: set[str], *, n: int, seed: int) -> dict[str, float]:
        """Validity, uniqueness and novelty (against ``known``, the training molecules) of ``n``
        molecules sampled from the prior, and their product ``chem_score``, which the search can
        optimise instead of the ELBO."""
        from seqlab import chem
        from seqlab.models.molecule import sample_smiles

        smiles = sample_smiles(model, tokenizer, n=n, seed=seed)
        valid, unique, novel = chem.validity(smiles), chem.uniqueness(smiles, None), chem.novelty(smiles, known)
        return {"valid": valid, "unique": unique, "novelty": novel, "chem_score": valid * unique * novel}


def decode_split(tokenizer, split: EncodedSplit) -> list[str]:
    """The SMILES strings of an encoded split (training molecules are stored canonical)."""
    return [tokenizer.decode(split.ids[a:b]) for a, b in zip(split.offsets[:-1], split.offsets[1:])]


def make_task(name: str, num_classes: int):
    return {"classify": lambda: Classification(num_classes), "generate": LanguageModel,
            "entity": lambda: EntityClassification(num_classes), "molecule": MoleculeGeneration}[name]()
