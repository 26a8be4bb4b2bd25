"""Word-level tokenizer: lower-cased words of any script, numbers and single punctuation marks.

The same splitting is written twice, once in Python (``regex``, used here: 5x faster than calling
the other from Python) and once as a Hugging Face ``tokenizers`` pipeline (normaliser +
pre-tokenizer), so a vocabulary exports as a real ``tokenizer.json``
(:meth:`WordTokenizer.hf_tokenizer`) that ``tokenizers.Tokenizer.from_file`` loads and that gives
the same ids; a test holds the two equal on every built-in text dataset and on other scripts. A word is a run of letters,
marks and digits in any script (``café``, ``привет``, ``नमस्ते``), with one apostrophe suffix
(``don't``); Chinese characters stand alone (the text has no spaces to split on); any other
character is a token of its own. CFPB redacts personal details as XX/XXXX: every redaction (a
redacted date too) becomes the one token ``xxxx`` so they don't crowd the vocabulary.

``scheme="ascii"`` is the splitting of checkpoints written before Unicode words (``[a-z0-9]``
words; an accented letter was a token of its own): such checkpoints keep it, so their answers do
not change.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import regex

from seqlab.tokenizers import PAD, UNK, ragged

REDACTED = r"\b[xX]{2,}(?:/(?:[xX]{2,}|\d{2,4}))*\b"  # XXXX, XX/XX/2019
WORD = r"[\p{L}\p{N}\p{M}]+(?:'\p{L}[\p{L}\p{M}]*)?|[^\s\p{L}\p{N}\p{M}]"  # Oniguruma, as tokenizers runs it
SCHEMES = ("unicode", "ascii")

_ASCII_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_REDACTED_RE = re.compile(REDACTED)
# what BertNormalizer does, in Python: drop control characters (whitespace becomes a space), space out
# the CJK ideographs of its table (kana and hangul stay in words)
_CONTROL_RE = regex.compile(r"[\x00\ufffd]|(?![\t\n\r])[\p{Cc}\p{Cf}]")
_CHINESE_RE = regex.compile("([\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f"
                            "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f])")
_WORD_RE = regex.compile(WORD)


@functools.cache
def hf_pipeline():
    """The normaliser and pre-tokenizer of ``scheme="unicode"`` as ``tokenizers`` runs them (for export)."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    normalizer = normalizers.Sequence([
        normalizers.NFKC(),  # compatibility forms: the ligature "ﬁ" -> "fi", full-width letters -> ASCII
        normalizers.Replace(Regex(REDACTED), " xxxx "),
        # drops control characters, spaces out Chinese characters, lower-cases; accents are kept
        normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True),
    ])
    pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                             pre_tokenizers.Split(Regex(WORD), behavior="isolated")])
    return normalizer, pre_tokenizer


def split_words(text: str, normalize: str = "default", scheme: str = "unicode") -> list[str]:
    """Lower-cased words; ``normalize="seed001"`` first applies write-up 001's cleaning."""
    if normalize == "seed001":
        from seqlab.data.text import seed001_clean

        text = seed001_clean(text)
    if scheme == "ascii":
        return _ASCII_TOKEN_RE.findall(_REDACTED_RE.sub(" xxxx ", text).lower())
    if text.isascii():  # NFKC and the CJK table leave ASCII as it is: 2x faster on English text
        return _WORD_RE.findall(_CONTROL_RE.sub("", _REDACTED_RE.sub(" xxxx ", text)).lower())
    text = _CONTROL_RE.sub("", _REDACTED_RE.sub(" xxxx ", unicodedata.normalize("NFKC", text)))
    return _WORD_RE.findall(_CHINESE_RE.sub(r" \1 ", text).lower())


class WordTokenizer:
    """Maps text to ids; id 0 is padding, id 1 is unknown."""

    def __init__(self, vocab: list[str], *, max_len: int, normalize: str = "default", scheme: str = "unicode"):
        if vocab[:2] != [PAD, UNK]:
            raise ValueError("vocab must start with <pad>, <unk>")
        if scheme not in SCHEMES:
            raise ValueError(f"unknown word scheme {scheme!r}; known: {', '.join(SCHEMES)}")
        self.vocab = vocab
        self.max_len = max_len
        self.normalize = normalize
        self.scheme = scheme
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
        ids = [self.index.get(w, 1) for w in self.words(text)[: self.max_len]]
        return ids or [1]  # a text with no words still gets one step

    def encode_many(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        return ragged([self.encode(t) for t in texts])

    # what seqlab.tasks.encoding.encode_mention needs: ids of a piece of text (no cut), the ids around a sequence
    unk_id = 1
    specials: tuple[list[int], list[int]] = ([], [])

    def pieces(self, text: str) -> list[int]:
        return [self.index.get(w, 1) for w in self.words(text)]

    def words(self, text: str) -> list[str]:
        return split_words(text, self.normalize, self.scheme)

    def hf_tokenizer(self, truncate: bool = True):
        """This vocabulary as a Hugging Face ``tokenizers.Tokenizer`` (``scheme="unicode"`` only).

        Saved with ``.save("tokenizer.json")`` it loads without seqlab and gives the same ids
        (``normalize="seed001"``'s cleaning is Python and is not in it: apply it first)."""
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel

        if self.scheme != "unicode":
            raise ValueError(f"a {self.scheme!r} word tokenizer has no Hugging Face form (a checkpoint written before "
                             f"Unicode words); its vocabulary is in seqlab_tokenizer.json")
        tok = Tokenizer(WordLevel(self.index, unk_token=UNK))
        tok.normalizer, tok.pre_tokenizer = hf_pipeline()
        if truncate:
            tok.enable_truncation(max_length=self.max_len)
        return tok

    def to_dict(self) -> dict:
        return {"kind": "word", "max_len": self.max_len, "normalize": self.normalize, "scheme": self.scheme,
                "vocab": self.vocab}

    @classmethod
    def from_dict(cls, d: dict) -> WordTokenizer:
        # a dict without "scheme" was written before Unicode words: it keeps the ASCII splitting
        return cls(d["vocab"], max_len=d["max_len"], normalize=d.get("normalize", "default"),
                   scheme=d.get("scheme", "ascii"))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Path) -> WordTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text()))
