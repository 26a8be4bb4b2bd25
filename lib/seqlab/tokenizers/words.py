"""Word-level tokenizer: lower-cased words, numbers and single punctuation marks."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from seqlab.tokenizers import PAD, UNK, ragged

# Words, numbers, or single punctuation marks. CFPB redacts personal details as XX/XXXX;
# every redaction (a redacted date too) becomes one token so they don't crowd the vocabulary.
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


_REDACTED_RE = re.compile(r"\b[xX]{2,}(?:/(?:[xX]{2,}|\d{2,4}))*\b")  # XXXX, XX/XX/2019



def split_words(text: str, normalize: str = "default") -> list[str]:
    """Lower-cased words; ``normalize="seed001"`` first applies write-up 001's cleaning."""
    if normalize == "seed001":
        from seqlab.data.text import seed001_clean

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

    # what seqlab.tasks.encoding.encode_mention needs: ids of a piece of text (no cut), the ids around a sequence
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
