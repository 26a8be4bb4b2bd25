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
        return ragged_counts(self.counts(texts))

    def encode(self, text: str) -> list[int]:
        ids, _ = self.encode_many([text])
        return ids.tolist()

    def to_dict(self) -> dict:
        return {"kind": "ngrams", "analyzer": self.analyzer, "ngram_range": list(self.ngram_range),
                "max_len": self.max_len, "vocab": self.vocab}

    @classmethod
    def from_dict(cls, d: dict) -> NgramTokenizer:
        return cls(d["vocab"], analyzer=d["analyzer"], ngram_range=tuple(d["ngram_range"]), max_len=d.get("max_len", 0))


def ragged_counts(counts) -> tuple[np.ndarray, np.ndarray]:
    """CSR n-gram counts (column j is id j + 1) -> ragged ids, sorted, each repeated as often as it
    occurs, and offsets. Id 0 (padding) counts 1 for a row with no known n-gram: it scores the bias alone."""
    from scipy import sparse

    empty = (np.diff(counts.indptr) == 0).astype(np.int32)[:, None]
    counts = sparse.hstack([sparse.csr_matrix(empty), counts], format="csr")
    counts.sort_indices()
    ids = np.repeat(counts.indices.astype(np.int32), counts.data)
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts.sum(axis=1)).ravel(), out=offsets[1:])
    return ids, offsets


MENTION = "xmentionx"  # stands for the mention among its context words (one word to scikit-learn's analyser)


class MentionNgramTokenizer:
    """N-grams of an entity mention and of the words around it: the TF-IDF baseline of the entity tables.

    One vocabulary in two blocks. Ids ``1 .. mention_size``: the mention's own n-grams (the model's
    analyser and range, character 2-5-grams within words by default), so "IL-2" and "IL-4" share
    "il-". The ids after: word 1- and 2-grams of the ``context_words`` words left and right of the
    mention in its sentence, the mention itself standing as the word ``xmentionx`` (so "expression
    of xmentionx" is a bigram of its own). A row is ``(text, start, end)``; :meth:`encode_rows` gives
    the sorted, repeated ids :class:`seqlab.models.linear.MentionTfidfLinear` weighs, block by block.
    """

    def __init__(self, mention_vocab: list[str], context_vocab: list[str], *, analyzer: str,
                 ngram_range: tuple[int, int], context_words: int, max_len: int = 0):
        self.mention = NgramTokenizer(mention_vocab, analyzer=analyzer, ngram_range=ngram_range)
        self.context = NgramTokenizer(context_vocab, analyzer="word", ngram_range=(1, 2))
        self.context_words, self.max_len = context_words, max_len

    @staticmethod
    def contexts(texts, starts, ends, context_words: int) -> list[str]:
        """Each mention's ``context_words`` words either side, the mention as the word ``xmentionx``."""
        out = []
        for text, a, b in zip(texts, starts, ends):
            left, right = text[: int(a)].split(), text[int(b) :].split()
            out.append(" ".join([*left[max(0, len(left) - context_words) : len(left)], MENTION, *right[:context_words]]))
        return out

    @classmethod
    def build(cls, texts, starts, ends, *, analyzer: str = "char_wb", ngram_range: tuple[int, int] = (2, 5),
              min_df: int = 2, max_features: int = 0, context_words: int = 5, max_len: int = 0):
        texts = list(texts)
        mentions = [t[int(a) : int(b)] for t, a, b in zip(texts, starts, ends)]
        mention = NgramTokenizer.build(mentions, analyzer=analyzer, ngram_range=ngram_range, min_df=min_df,
                                       max_features=max_features)
        context = NgramTokenizer.build(cls.contexts(texts, starts, ends, context_words), analyzer="word",
                                       ngram_range=(1, 2), min_df=min_df, max_features=max_features)
        return cls(mention.vocab, context.vocab, analyzer=analyzer, ngram_range=ngram_range,
                   context_words=context_words, max_len=max_len)

    @property
    def context_start(self) -> int:
        """The first id of the context block."""
        return len(self.mention.vocab)

    def __len__(self) -> int:
        return len(self.mention.vocab) + len(self.context.vocab) - 1

    def encode_rows(self, texts, starts, ends) -> tuple[np.ndarray, np.ndarray]:
        """Ragged ids (sorted: the mention's block, then the context's) and offsets of the rows."""
        from scipy import sparse

        texts = list(texts)
        mentions = [t[int(a) : int(b)] for t, a, b in zip(texts, starts, ends)]
        return ragged_counts(sparse.hstack([self.mention.counts(mentions), self.context.counts(
            self.contexts(texts, starts, ends, self.context_words))], format="csr"))

    def encode_many(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text read as a mention without context."""
        texts = list(texts)
        return self.encode_rows(texts, [0] * len(texts), [len(t) for t in texts])

    def encode(self, text: str) -> list[int]:
        return self.encode_many([text])[0].tolist()

    def to_dict(self) -> dict:
        return {"kind": "mention-ngrams", "analyzer": self.mention.analyzer, "ngram_range": list(self.mention.ngram_range),
                "context_words": self.context_words, "max_len": self.max_len, "mention_vocab": self.mention.vocab,
                "context_vocab": self.context.vocab}

    @classmethod
    def from_dict(cls, d: dict) -> MentionNgramTokenizer:
        return cls(d["mention_vocab"], d["context_vocab"], analyzer=d["analyzer"], ngram_range=tuple(d["ngram_range"]),
                   context_words=d["context_words"], max_len=d.get("max_len", 0))
