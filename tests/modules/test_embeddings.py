import json
import os
import subprocess
import sys

import numpy as np
import pytest

from seqlab.errors import SeqlabError
from seqlab.modules.embeddings import embedding_matrix, hash64, hash64_many, spacy_vectors, word2vec_vectors
from seqlab.storage import seqlab_home
from seqlab.tokenizers.words import WordTokenizer

# spacy.strings.hash_string(s) from spaCy 3.8.18; our hash matched it on all 709,118 strings
# of en_core_web_md's string store as well.
SPACY_HASHES = {
    "apple": 8566208034543834098,
    "": 14313749767032693980,
    "a": 11901859001352538922,
    "hello world": 2758594965276909933,
    "naïve": 16224804062388677344,
    "abcdefgh": 17751780907874141760,
    "abcdefghi": 13885881106499164936,
    "King": 14826469074451677028,
}

COMPLAINTS = [
    "I was charged a late fee on my credit card even though I paid the bill on time.",
    "The mortgage servicer did not apply my payment and reported me to the credit bureau.",
    "A debt collector keeps calling my phone about a debt that is not mine.",
    "My bank closed my checking account without notice and kept my money.",
    "There is an inaccurate account on my credit report and the dispute was rejected.",
    "The lender refused to refinance my student loan and raised the interest rate.",
    "I requested a refund for an unauthorized transaction but the company denied it.",
    "They sent my personal information to the wrong address and my identity was stolen.",
]


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_hash_is_spacys_murmurhash64a():
    for text, expected in SPACY_HASHES.items():
        assert hash64(text) == expected
    tricky = [*SPACY_HASHES, *("x" * n for n in range(1, 26)), "日本語のテキスト", "🙂🙂", "\t\u00a0", "don't"]
    many = hash64_many(tricky)
    assert many.dtype == np.uint64
    assert many.tolist() == [hash64(t) for t in tricky]
    assert all(0 <= h < 2**64 for h in many.tolist()) and len(set(many.tolist())) == len(set(tricky))


def test_spacy_vectors_make_sense():
    wv = spacy_vectors()
    assert wv.vectors.shape == (20000, 300) and wv.vectors.dtype == np.float32
    assert len(wv.rows) > 600_000  # upper/lower-case variants share the 20k rows
    assert wv.rows["Apple"] == wv.rows["apple"]
    assert "number" in wv and "mark" in wv  # spaCy symbols: absent from strings.json, yet keys
    assert cosine(wv["king"], wv["queen"]) > cosine(wv["king"], wv["banana"])
    assert cosine(wv["good"], wv["great"]) > cosine(wv["good"], wv["mortgage"])
    assert cosine(wv["loan"], wv["mortgage"]) > cosine(wv["loan"], wv["banana"])
    # a second call reads the cache written by the first, the same values
    root = seqlab_home() / "embeddings" / "spacy-en-core-web-md"
    assert sorted(p.name for p in root.iterdir()) == ["vectors.npy", "words.json"]
    meta = json.loads((root / "words.json").read_text())
    assert meta["keys_matched"] == meta["keys"] == 684830  # every vector key has its string
    again = spacy_vectors()
    assert np.array_equal(again.vectors, wv.vectors) and again.rows == wv.rows


def test_spacy_matrix_rows_and_coverage():
    tok = WordTokenizer.build(COMPLAINTS, max_size=1000, min_freq=1, max_len=100)
    vocab = tok.vocab + ["qwzxv"]  # one word no vector has
    matrix, stats = embedding_matrix(vocab, "spacy", seed=3)
    assert matrix.shape == (len(vocab), 300) and matrix.dtype == np.float32
    assert stats["source"] == "spacy" and stats["dim"] == 300
    assert stats["coverage"] == stats["found"] / (len(vocab) - 2) > 0.8
    assert not matrix[0].any()  # <pad>
    wv = spacy_vectors()
    i = vocab.index("mortgage")
    assert np.array_equal(matrix[i], wv["mortgage"])
    # <unk> and unknown words: random, on the scale of the real vectors, reproducible for a seed
    norms = np.linalg.norm(matrix[[vocab.index(w) for w in vocab[2:] if w in wv.rows]], axis=1)
    for row in (matrix[1], matrix[-1]):
        assert row.any() and 0.5 * norms.mean() < np.linalg.norm(row) < 2 * norms.mean()
    assert np.array_equal(embedding_matrix(vocab, "spacy", seed=3)[0], matrix)
    assert not np.array_equal(embedding_matrix(vocab, "spacy", seed=4)[0][1], matrix[1])


def test_spacy_falls_back_to_lower_case():
    matrix, stats = embedding_matrix(["<pad>", "<unk>", "MORTGAGE", "Qwzxv"], "spacy")
    assert stats["found"] == 1 and stats["coverage"] == 0.5
    assert np.array_equal(matrix[2], spacy_vectors()["mortgage"])


TOPICS = (["mortgage", "escrow", "servicer", "foreclosure", "payment", "home"],
          ["card", "fee", "charge", "merchant", "refund", "statement"])


def corpus(n=300, seed=0):
    """Synthetic complaint-like sentences: two topics with their own words, shared function words."""
    rng = np.random.default_rng(seed)
    glue = ["the", "my", "a", "was", "and", "on", "to", "i"]
    return [" ".join(rng.choice(TOPICS[i % 2] + glue, size=12)) + "." for i in range(n)]


def test_word2vec_is_deterministic_and_cached(tmp_path, monkeypatch):
    texts = corpus()
    monkeypatch.setenv("SEQLAB_HOME", str(tmp_path / "a"))
    first = word2vec_vectors(texts, dim=16, seed=1)
    [root] = (tmp_path / "a" / "embeddings").iterdir()
    assert root.name.startswith("word2vec-")
    assert sorted(p.name for p in root.iterdir()) == ["vectors.npy", "words.json"]
    assert json.loads((root / "words.json").read_text())["rows"] == first.rows
    # a fresh process, with another str-hash salt and an empty cache, trains the same vectors
    script = ("import sys, json, numpy as np; from seqlab.modules.embeddings import word2vec_vectors; "
              "wv = word2vec_vectors(json.load(sys.stdin), dim=16, seed=1); "
              "np.save(sys.argv[1], wv.vectors); print(json.dumps(wv.rows))")
    env = {**os.environ, "SEQLAB_HOME": str(tmp_path / "b"), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "v.npy")], input=json.dumps(texts),
                         capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == first.rows
    assert np.array_equal(np.load(tmp_path / "v.npy"), first.vectors)
    # same cache key: read back, not retrained; another seed is another model
    assert np.array_equal(word2vec_vectors(texts, dim=16, seed=1).vectors, first.vectors)
    other = word2vec_vectors(texts, dim=16, seed=2)
    assert other.rows == first.rows and not np.array_equal(other.vectors, first.vectors)
    assert len(list((tmp_path / "a" / "embeddings").iterdir())) == 2


def test_word2vec_matrix(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_HOME", str(tmp_path))
    texts = corpus()
    tok = WordTokenizer.build(texts, max_size=100, min_freq=1, max_len=50)
    vocab = tok.vocab + ["unseen"]
    matrix, stats = embedding_matrix(vocab, "word2vec", texts=texts, dim=16, seed=1)
    assert matrix.shape == (len(vocab), 16) and not matrix[0].any()
    assert stats == {"source": "word2vec", "dim": 16, "found": len(vocab) - 3,
                     "coverage": (len(vocab) - 3) / (len(vocab) - 2)}
    wv = word2vec_vectors(texts, dim=16, seed=1)
    assert np.array_equal(matrix[vocab.index("escrow")], wv["escrow"])
    # on average, the words of one topic end up closer to each other than to the other topic's
    home, card = TOPICS
    within = np.mean([cosine(wv[a], wv[b]) for topic in TOPICS for a in topic for b in topic if a < b])
    across = np.mean([cosine(wv[a], wv[b]) for a in home for b in card])
    assert within > across


def test_errors_say_what_is_expected():
    vocab = ["<pad>", "<unk>", "loan"]
    with pytest.raises(SeqlabError, match="unknown embedding source 'glove'; choose one of: spacy, word2vec"):
        embedding_matrix(vocab, "glove")
    with pytest.raises(SeqlabError, match="pass texts="):
        embedding_matrix(vocab, "word2vec")
    with pytest.raises(SeqlabError, match="300 dimensions; got dim=64"):
        embedding_matrix(vocab, "spacy", dim=64)
    with pytest.raises(SeqlabError, match="must start with '<pad>', '<unk>'"):
        embedding_matrix(["loan"], "spacy")
