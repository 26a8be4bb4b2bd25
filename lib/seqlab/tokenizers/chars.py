"""Character-level tokenizer of the char-level text generator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from seqlab.tokenizers import BOS, EOS, PAD, UNK, ragged


class CharTokenizer:
    """Characters to ids for the char-level generator: ``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3.

    ``encode`` gives ``<bos>`` + the text's characters + ``<eos>``, the text cut to ``max_len`` characters.
    A subclass changes what a token is by overriding ``split`` and ``tokens`` (see :mod:`seqlab.tokenizers.smiles`).
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
