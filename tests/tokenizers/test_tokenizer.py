from seqlab.tokenizers import PAD, UNK
from seqlab.tokenizers.words import WordTokenizer, split_words


def test_split_words_lowercases_and_merges_redactions():
    assert split_words("On XX/XX/2019 I paid XXXX $500.") == ["on", "xxxx", "i", "paid", "xxxx", "$", "500", "."]
    assert split_words("I don't know") == ["i", "don't", "know"]


def test_build_is_deterministic_and_respects_limits():
    texts = ["a b c a", "b a d", "e"]
    tok = WordTokenizer.build(texts, max_size=4, min_freq=2, max_len=3)
    assert tok.vocab == [PAD, UNK, "a", "b"]  # c, d, e seen once; max_size caps the rest
    assert WordTokenizer.build(texts, max_size=4, min_freq=2, max_len=3).vocab == tok.vocab
    assert tok.encode("a b zzz a b") == [2, 3, 1]  # truncated to max_len, unknown -> 1
    assert tok.encode("") == [1]  # never an empty sequence


def test_encode_many_is_ragged(tmp_path):
    tok = WordTokenizer.build(["x y z", "x y"], max_size=10, min_freq=1, max_len=10)
    ids, offsets = tok.encode_many(["x y z", "y", "q q"])
    assert offsets.tolist() == [0, 3, 4, 6]
    assert ids[offsets[1] : offsets[2]].tolist() == [tok.index["y"]]
    tok.save(tmp_path / "t.json")
    again = WordTokenizer.load(tmp_path / "t.json")
    assert again.vocab == tok.vocab and again.max_len == tok.max_len
