"""N-gram tokenizer of the TF-IDF linear baseline: a text becomes the ids of its known n-grams.

The n-grams are scikit-learn's (``CountVectorizer``: ``char_wb`` n-grams inside word boundaries,
``char`` n-grams across them, or ``word`` n-grams), lower-cased, with a vocabulary built on the
training split (those in at least ``min_df`` training texts, the ``max_features`` most frequent).
A text's ids are its n-grams' ids, sorted, each repeated as often as it occurs: the counts a
TF-IDF model weighs (:class:`seqlab.models.linear.TfidfLinear`). Unknown n-grams are left out; id
0 is padding (a text with no known n-gram is the single id 0). The whole text is read: no cut at
``max_len``.

The vocabulary is stored as a JSON list in ``seqlab_tokenizer.json`` (no pickle); scikit-learn
rebuilds the same analyser from the settings.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from seqlab.tokenizers import PAD

ANALYZERS = ("char_wb", "char", "word")


class NgramTokenizer:
    def __init__(self, vocab: list[str], *, analyzer: str, ngram_range: tuple[int, int], max_len: int = 0):
        if vocab[:1] != [PAD]:
            raise ValueError("vocab must start with <pad>")
        if analyzer not in ANALYZERS:
            raise ValueError(f"unknown n-gram analyzer {analyzer!r}; known: {', '.join(ANALYZERS)}")
        self.vocab, self.analyzer, self.ngram_range = vocab, analyzer, (int(ngram_range[0]), int(ngram_range[1]))
        self.max_len = max_len  # not a cut: the whole text is read (kept for the checkpoint's record)

    @staticmethod
    def vectorizer(analyzer: str, ngram_range: tuple[int, int], **kwargs):
        from sklearn.feature_extraction.text import CountVectorizer

        # word n-grams: words of letters and digits, punctuation dropped (scikit-learn's default pattern)
        return CountVectorizer(analyzer=analyzer, ngram_range=tuple(ngram_range), lowercase=True,
                               dtype=np.int32, **kwargs)

    @classmethod
    def build(cls, texts: Iterable[str], *, analyzer: str = "char_wb", ngram_range: tuple[int, int] = (2, 5),
              min_df: int = 2, max_features: int = 0, max_len: int = 0) -> NgramTokenizer:
        texts = list(texts)
        cv = cls.vectorizer(analyzer, ngram_range, min_df=min(min_df, len(texts)), max_features=max_features or None)
        cv.fit(texts)
        return cls([PAD, *cv.get_feature_names_out().tolist()], analyzer=analyzer, ngram_range=ngram_range,
                   max_len=max_len)

    @functools.cached_property
    def _counter(self):
        return self.vectorizer(self.analyzer, self.ngram_range, vocabulary=self.vocab[1:])

    def __len__(self) -> int:
        return len(self.vocab)

    def counts(self, texts: Iterable[str]):
        """``(n, len(vocab) - 1)`` scipy CSR matrix of n-gram counts (column j is id j + 1)."""
        return self._counter.transform(list(texts))

    def encode_many(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        from scipy import sparse

        counts = self.counts(texts)
        # column 0 (padding) counts 1 for a text with no known n-gram: it then scores the bias alone
        empty = (np.diff(counts.indptr) == 0).astype(np.int32)[:, None]
        counts = sparse.hstack([sparse.csr_matrix(empty), counts], format="csr")
        counts.sort_indices()
        ids = np.repeat(counts.indices.astype(np.int32), counts.data)
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.asarray(counts.sum(axis=1)).ravel(), out=offsets[1:])
        return ids, offsets

    def encode(self, text: str) -> list[int]:
        ids, _ = self.encode_many([text])
        return ids.tolist()

    def to_dict(self) -> dict:
        return {"kind": "ngrams", "analyzer": self.analyzer, "ngram_range": list(self.ngram_range),
                "max_len": self.max_len, "vocab": self.vocab}

    @classmethod
    def from_dict(cls, d: dict) -> NgramTokenizer:
        return cls(d["vocab"], analyzer=d["analyzer"], ngram_range=tuple(d["ngram_range"]), max_len=d.get("max_len", 0))
