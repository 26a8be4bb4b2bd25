import pytest

from seqlab.tokenizers import PAD, UNK
from seqlab.tokenizers.words import WordTokenizer, hf_pipeline, split_words


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


OTHER_SCRIPTS = [
    "Café au lait, naïve résumé!!",  # accents stay in the word
    "Привет, мир! Это тест.",  # Cyrillic
    "我爱北京天安门。東京は日本の首都です",  # Chinese characters one by one; kana stay a word
    "नमस्ते दुनिया",  # Devanagari: the vowel signs are marks inside the word
    "ﬁne Ｆｕｌｌ\u200bwidth",  # NFKC: the ligature and full-width letters; a zero-width space is dropped
    "On XX/XX/2019 I paid $1,200.50 -- don't (can't) XXXX",
]


def test_words_of_any_script():
    assert split_words("Café au lait, naïve résumé!!") == ["café", "au", "lait", ",", "naïve", "résumé", "!", "!"]
    assert split_words("Привет, мир!") == ["привет", ",", "мир", "!"]
    assert split_words("我爱北京。東京は") == ["我", "爱", "北", "京", "。", "東", "京", "は"]
    assert split_words("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert split_words("ﬁne Ｆｕｌｌ") == ["fine", "full"]
    # the ASCII splitting of checkpoints written before, kept for them
    assert split_words("Café", scheme="ascii") == ["caf", "é"]


def test_a_checkpoint_written_before_unicode_words_keeps_its_splitting():
    old = {"kind": "word", "max_len": 8, "normalize": "default", "vocab": [PAD, UNK, "caf", "é", "café"]}
    assert WordTokenizer.from_dict(old).encode("café") == [2, 3]
    new = WordTokenizer.from_dict({**old, "scheme": "unicode"})
    assert new.encode("café") == [4] and new.to_dict()["scheme"] == "unicode"


def _hf_ids_equal_ours(tok: WordTokenizer, texts: list[str]) -> None:
    hf = tok.hf_tokenizer()
    for text in texts:
        ours = tok.encode(text)
        theirs = hf.encode(text).ids or [1]  # seqlab gives a text with no words one unknown step
        assert theirs == ours, text


def test_the_hugging_face_tokenizer_json_gives_the_same_ids(tmp_path):
    from tokenizers import Tokenizer

    tok = WordTokenizer.build(OTHER_SCRIPTS, max_size=100, min_freq=1, max_len=12)
    tok.hf_tokenizer().save(str(tmp_path / "tokenizer.json"))
    loaded = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))  # no seqlab needed
    for text in OTHER_SCRIPTS + ["", "   ", "unknown wörds ЖЖЖ"]:
        assert (loaded.encode(text).ids or [1]) == tok.encode(text)
    assert len(loaded.encode(" ".join(OTHER_SCRIPTS)).ids) == 12  # cut to max_len like seqlab


@pytest.mark.parametrize("name", ["cfpb", "sentences2", "drugs-condition"])
def test_the_two_splittings_agree_on_the_builtin_texts(name):
    """The Python splitting and the exported Hugging Face pipeline give the same words on real data."""
    from seqlab.data.prepare import prepare

    texts = prepare(name).split("train")["text"].tolist()
    texts = [t for i, t in enumerate(texts) if i < 3000 or not t.isascii()]  # the first 3,000 and every non-ASCII one
    tok = WordTokenizer.build(texts, max_size=20_000, min_freq=1, max_len=100_000)
    normalizer, pre_tokenizer = hf_pipeline()
    for text in texts:
        assert [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))] == tok.words(text)
    _hf_ids_equal_ours(tok, texts[:500])


def test_tokenizer_files_for_use_without_seqlab(tmp_path):
    from tokenizers import Tokenizer

    from seqlab.tokenizers import load, tokenizer_files
    from seqlab.tokenizers.chars import CharTokenizer

    word = WordTokenizer.build(OTHER_SCRIPTS, max_size=100, min_freq=1, max_len=12)
    assert sorted(tokenizer_files(word, tmp_path)) == ["seqlab_tokenizer.json", "tokenizer.json"]
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode("naïve résumé").ids == word.encode("naïve résumé")
    chars = CharTokenizer.build(["abc", "abd"], max_len=10)
    (tmp_path / "chars").mkdir()
    assert tokenizer_files(chars, tmp_path / "chars") == ["seqlab_tokenizer.json"]  # no Hugging Face form
    assert load(tmp_path / "chars" / "seqlab_tokenizer.json").to_dict() == chars.to_dict()
