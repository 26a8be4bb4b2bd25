"""Tokenizers, each with a vocabulary built on the training split only (or shipped with a model).

Every tokenizer has ``encode``, ``encode_many`` (ragged ids + offsets), ``__len__``, ``max_len``
and a JSON-able ``to_dict`` whose ``kind`` names its class; :func:`from_dict` rebuilds any of them.

    words      WordTokenizer: lower-cased words, id 0 padding, 1 unknown
    chars      CharTokenizer: characters with <bos>/<eos>, for the char-level generator
    smiles     SmilesTokenizer: chemical tokens of SMILES (Cl, [nH], %10 stay whole)
    selfies    SelfiesTokenizer: SELFIES symbols of SMILES ([C], [=O], [Ring1]), decoded back to SMILES
    wordpiece  WordPieceTokenizer: all-MiniLM-L6-v2's own WordPiece
    ngrams     NgramTokenizer: the counted n-grams of the TF-IDF baseline (scikit-learn's analysers)
    mention-ngrams  MentionNgramTokenizer: an entity mention's n-grams and its context words' (that baseline's)
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"


def ragged(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ids (int32) and offsets (int64, len n+1) of a list of id sequences."""
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=offsets[1:])
    ids = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(offsets[-1]))
    return ids, offsets



# kind -> "module:class"; imported on use, so transformers' tokenizers load only for MiniLM
TOKENIZERS: dict[str, str] = {"word": "seqlab.tokenizers.words:WordTokenizer",
                              "char": "seqlab.tokenizers.chars:CharTokenizer",
                              "wordpiece": "seqlab.tokenizers.wordpiece:WordPieceTokenizer",
                              "smiles": "seqlab.tokenizers.smiles:SmilesTokenizer",
                              "selfies": "seqlab.tokenizers.selfies:SelfiesTokenizer",
                              "ngrams": "seqlab.tokenizers.ngrams:NgramTokenizer",
                              "mention-ngrams": "seqlab.tokenizers.ngrams:MentionNgramTokenizer"}


def from_dict(d: dict):
    """Rebuild any tokenizer from its ``to_dict`` (a checkpoint's ``seqlab_tokenizer.json``)."""
    kind = d.get("kind", "word")
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: {', '.join(sorted(TOKENIZERS))}")
    module, name = TOKENIZERS[kind].split(":")
    return getattr(importlib.import_module(module), name).from_dict(d)


def load(path: Path):
    return from_dict(json.loads(Path(path).read_text()))


def tokenizer_files(tokenizer, folder: Path) -> list[str]:
    """Write ``tokenizer`` into ``folder`` for use without seqlab; the names of the files written.

    Word-level and WordPiece tokenizers: a Hugging Face ``tokenizer.json``
    (``tokenizers.Tokenizer.from_file`` gives the same ids, cut at ``max_len``). Every tokenizer also
    writes ``seqlab_tokenizer.json``, its vocabulary and settings in seqlab's own schema: for the
    character, SMILES and SELFIES tokenizers that is the only form (they split text in Python)."""
    folder = Path(folder)
    (folder / "seqlab_tokenizer.json").write_text(json.dumps(tokenizer.to_dict()))
    names = ["seqlab_tokenizer.json"]
    hf = getattr(tokenizer, "hf_tokenizer", None)
    if hf is not None and getattr(tokenizer, "scheme", "unicode") == "unicode":
        hf().save(str(folder / "tokenizer.json"))
        names.append("tokenizer.json")
    return names
