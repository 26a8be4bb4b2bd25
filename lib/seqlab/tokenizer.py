"""Tokenizers, each with a vocabulary built on the training split only (or shipped with a model).

Every tokenizer has ``encode``, ``encode_many`` (ragged ids + offsets), ``__len__``, ``max_len``
and a JSON-able ``to_dict`` whose ``kind`` names its class; :func:`from_dict` rebuilds any of them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
# Words, numbers, or single punctuation marks. CFPB redacts personal details as XX/XXXX;
# every redaction (a redacted date too) becomes one token so they don't crowd the vocabulary.
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_REDACTED_RE = re.compile(r"\b[xX]{2,}(?:/(?:[xX]{2,}|\d{2,4}))*\b")  # XXXX, XX/XX/2019


def split_words(text: str, normalize: str = "default") -> list[str]:
    """Lower-cased words; ``normalize="seed001"`` first applies write-up 001's cleaning."""
    if normalize == "seed001":
        from seqlab.text import seed001_clean

        text = seed001_clean(text)
    return _TOKEN_RE.findall(_REDACTED_RE.sub(" xxxx ", text).lower())


class WordTokenizer:
    """Maps text to ids; id 0 is padding, id 1 is unknown."""

    def __init__(self, vocab: list[str], *, max_len: int, normalize: str = "default"):
        if vocab[:2] != [PAD, UNK]:
            raise ValueError("vocab must start with <pad>, <unk>")
        self.vocab = vocab
        self.max_len = max_len
        self.normalize = normalize
        self.index = {w: i for i, w in enumerate(vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], *, max_size: int, min_freq: int, max_len: int,
              normalize: str = "default") -> WordTokenizer:
        counts = Counter(w for t in texts for w in split_words(t, normalize))
        # most_common breaks ties by first occurrence, so the vocabulary is deterministic
        words = [w for w, n in counts.most_common(max_size - 2) if n >= min_freq]
        return cls([PAD, UNK, *words], max_len=max_len, normalize=normalize)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        ids = [self.index.get(w, 1) for w in split_words(text, self.normalize)[: self.max_len]]
        return ids or [1]  # an all-punctuation-free text still gets one step

    def encode_many(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        return ragged([self.encode(t) for t in texts])

    # what seqlab.tasks.encode_mention needs: ids of a piece of text (no cut), the ids around a sequence
    unk_id = 1
    specials: tuple[list[int], list[int]] = ([], [])

    def pieces(self, text: str) -> list[int]:
        return [self.index.get(w, 1) for w in self.words(text)]

    def words(self, text: str) -> list[str]:
        return split_words(text, self.normalize)

    def to_dict(self) -> dict:
        return {"kind": "word", "max_len": self.max_len, "normalize": self.normalize, "vocab": self.vocab}

    @classmethod
    def from_dict(cls, d: dict) -> WordTokenizer:
        return cls(d["vocab"], max_len=d["max_len"], normalize=d.get("normalize", "default"))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Path) -> WordTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text()))


def ragged(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ids (int32) and offsets (int64, len n+1) of a list of id sequences."""
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=offsets[1:])
    ids = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(offsets[-1]))
    return ids, offsets


class CharTokenizer:
    """Characters to ids for the char-level generator: ``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3.

    ``encode`` gives ``<bos>`` + the text's characters + ``<eos>``, the text cut to ``max_len`` characters.
    A subclass changes what a token is by overriding ``split`` and ``tokens`` (see :mod:`seqlab.smiles`).
    """

    kind = "char"

    @staticmethod
    def split(text: str) -> list[str]:
        return list(text)

    def tokens(self, text: str) -> list[str]:
        """The tokens ``encode`` maps to ids."""
        return self.split(text[: self.max_len])

    def __init__(self, vocab: list[str], *, max_len: int):
        if vocab[:4] != [PAD, UNK, BOS, EOS]:
            raise ValueError("vocab must start with <pad>, <unk>, <bos>, <eos>")
        self.vocab = vocab
        self.max_len = max_len
        self.index = {c: i for i, c in enumerate(vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], *, max_size: int = 512, min_freq: int = 1, max_len: int = 100_000
              ) -> CharTokenizer:
        counts = Counter(c for t in texts for c in cls.split(t))
        chars = sorted(c for c, n in counts.most_common(max_size - 4) if n >= min_freq)  # sorted: stable ids
        return cls([PAD, UNK, BOS, EOS, *chars], max_len=max_len)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, *, bos: bool = True, eos: bool = True) -> list[int]:
        ids = [self.index.get(c, 1) for c in self.tokens(text)]
        return [2] * bos + ids + [3] * eos

    def encode_many(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        return ragged([self.encode(t) for t in texts])

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, stopping at ``<eos>``; special tokens are dropped."""
        out = []
        for i in ids:
            if i == 3:
                break
            if i > 3:
                out.append(self.vocab[i])
        return "".join(out)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "max_len": self.max_len, "vocab": self.vocab}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        return cls(d["vocab"], max_len=d["max_len"])


# kind -> "module:class"; imported on use, so transformers' tokenizers load only for MiniLM
TOKENIZERS: dict[str, str] = {"word": "seqlab.tokenizer:WordTokenizer", "char": "seqlab.tokenizer:CharTokenizer",
                              "wordpiece": "seqlab.models.bert:WordPieceTokenizer",
                              "smiles": "seqlab.smiles:SmilesTokenizer"}


def from_dict(d: dict):
    """Rebuild any tokenizer from its ``to_dict`` (a checkpoint's ``tokenizer.json``)."""
    import importlib

    kind = d.get("kind", "word")
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: {', '.join(sorted(TOKENIZERS))}")
    module, name = TOKENIZERS[kind].split(":")
    return getattr(importlib.import_module(module), name).from_dict(d)


def load(path: Path):
    return from_dict(json.loads(Path(path).read_text()))
