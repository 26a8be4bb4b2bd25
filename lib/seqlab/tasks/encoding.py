"""A split as the workers hold it: ragged token ids (ids + offsets), labels, and a task's extras.

Rows are encoded once on the driver; each worker gathers its batches from these flat arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqlab.tokenizers import ragged


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


def spelled_split(tokenizer, split: EncodedSplit) -> list[str]:
    """The molecules of an encoded split as the tokenizer writes them, unconverted: canonical SMILES
    (training molecules are stored canonical), or a SELFIES tokenizer's SELFIES."""
    return [tokenizer.spelled(split.ids[a:b]) for a, b in zip(split.offsets[:-1], split.offsets[1:])]
