"""The TF-IDF + linear SVM baseline: its n-gram ids, its forward pass against scikit-learn's own pipeline
on a real dataset, its checkpoint (no pickle) and its predictor."""

import json

import numpy as np
import pytest
import torch

from seqlab import checkpoint
from seqlab.config import DataConfig, ModelConfig
from seqlab.models import build_model
from seqlab.tasks.classify import TextClassifier
from seqlab.tasks.encoding import pad_rows
from seqlab.tokenizers import from_dict
from seqlab.tokenizers.ngrams import NgramTokenizer


def test_ngram_ids_are_sorted_counts_and_round_trip():
    tok = NgramTokenizer.build(["the cat sat", "a dog ran", "the dog sat"], analyzer="word", ngram_range=(1, 2),
                               min_df=1)
    ids, offsets = tok.encode_many(["the dog sat on the dog", "zebra", ""])
    rows = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    words = [[tok.vocab[i] for i in r] for r in rows]
    assert words[0] == sorted(words[0]) and words[0].count("dog") == 2 and words[0].count("the") == 2
    assert "the dog" in words[0] and "dog sat" in words[0] and "on" not in words[0]  # unknown n-grams left out
    assert rows[1] == rows[2] == [0]  # nothing known: the padding id alone
    again = from_dict(json.loads(json.dumps(tok.to_dict())))
    assert isinstance(again, NgramTokenizer) and again.encode("the dog sat on the dog") == rows[0]


@pytest.fixture(scope="module")
def fitted():
    """tfidf-linear fitted on the real drugs-condition splits, as ``seqlab train`` prepares them."""
    from seqlab.train.driver import prepare

    model_cfg = ModelConfig(model="tfidf-linear")
    prepared = prepare(DataConfig(dataset="drugs-condition"), model_cfg)
    model = build_model("tfidf-linear", vocab_size=prepared.vocab_size, num_classes=len(prepared.labels),
                        **model_cfg.kwargs())
    lines = []
    metrics = model.fit_splits(prepared.splits["train"], prepared.splits["validation"], log=lines.append)
    return prepared, model, metrics, lines


def test_forward_is_scikit_learns_tfidf_svm_on_real_text(fitted):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from seqlab.data.select import load_splits, prepare_data

    prepared, model, metrics, lines = fitted
    assert len(lines) == 1 and f"C {metrics['c']:g} chosen" in lines[0] and lines[0].count(": 0.") == 5  # 5 C values
    cfg = DataConfig(dataset="drugs-condition")
    frames = load_splits(prepare_data(cfg), cfg)
    labels = prepared.labels
    # scikit-learn's own pipeline with the same settings and the C seqlab chose
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    svm = LinearSVC(C=metrics["c"], class_weight="balanced", random_state=0)
    svm.fit(vec.fit_transform(frames["train"]["text"]), frames["train"]["label"].map(labels.index))
    want = svm.decision_function(vec.transform(frames["test"]["text"]))
    test = prepared.splits["test"]
    with torch.no_grad():
        got = model(torch.from_numpy(pad_rows(test, np.arange(len(test)))), None).numpy()
    assert len(prepared.tokenizer["vocab"]) - 1 == len(vec.vocabulary_)
    np.testing.assert_allclose(got * metrics["temperature"], want, atol=1e-4)
    assert (got.argmax(1) == want.argmax(1)).all()
    assert metrics["train_loss"] < 1 and 0.05 < metrics["temperature"] < 10


def test_checkpoint_holds_arrays_and_serves_the_same_answers(fitted, tmp_path):
    prepared, model, _, _ = fitted
    meta = {"task": "classify", "model": {"name": "tfidf-linear", "kwargs": ModelConfig(model="tfidf-linear").kwargs()},
            "labels": prepared.labels, "vocab_size": prepared.vocab_size, "epoch": 1, "metrics": {},
            "data": {"name": "drugs-condition"}}
    checkpoint.save(tmp_path, model=model, optimizer=None, meta=meta, tokenizer=prepared.tokenizer)
    assert {p.name for p in tmp_path.iterdir()} == {"model.safetensors", "seqlab_tokenizer.json", "meta.json"}
    clf = TextClassifier(tmp_path)
    texts = ["This pill cleared my skin in two months", "My back pain is gone", "x" * 3000, "!!!"]
    preds = clf.predict(texts)
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in preds)
    ids, offsets = NgramTokenizer.from_dict(prepared.tokenizer).encode_many(texts[:2])
    with torch.no_grad():
        direct = model(torch.from_numpy(pad_rows(_split(ids, offsets), np.arange(2))), None).softmax(-1).numpy()
    np.testing.assert_allclose(clf.probabilities(texts[:2]), direct, atol=1e-5)
    assert preds[0]["label"] == "Acne" and preds[1]["label"] == "Pain"


def _split(ids, offsets):
    from seqlab.tasks.encoding import EncodedSplit

    return EncodedSplit(ids, offsets, np.zeros(len(offsets) - 1, np.int64))


def test_bad_ngram_range_is_one_line():
    from seqlab.errors import SeqlabError
    from seqlab.train.driver import build_tokenizer

    with pytest.raises(SeqlabError, match=r"ngram_min \(4\) must not exceed ngram_max \(2\)"):
        build_tokenizer("ngrams", ["a b"], DataConfig(), ModelConfig(model="tfidf-linear",
                                                                      options={"ngram_min": 4, "ngram_max": 2}))


def test_mention_ngrams_keep_the_mention_and_its_context_words_apart():
    from seqlab.tokenizers.ngrams import MentionNgramTokenizer

    texts = ["expression of IL-2 in T cells", "binding of IL-4 to the receptor", "IL-2 expression rose"]
    starts, ends = [14, 11, 0], [18, 15, 4]
    tok = MentionNgramTokenizer.build(texts, starts, ends, analyzer="char_wb", ngram_range=(2, 3), min_df=1,
                                      context_words=2)
    assert MentionNgramTokenizer.contexts(texts[:1], starts[:1], ends[:1], 2) == ["expression of xmentionx in T"]
    ids, offsets = tok.encode_rows(texts[:1], starts[:1], ends[:1])
    row = ids[offsets[0] : offsets[1]]
    mention = [tok.mention.vocab[i] for i in row if i < tok.context_start]
    context = [tok.context.vocab[i - tok.context_start + 1] for i in row if i >= tok.context_start]
    assert "il" in mention and "-2" in mention and "of" not in mention  # the mention's characters only
    assert "of xmentionx" in context and "expression" in context and "cells" not in context  # 2 words each side
    assert (np.diff(row) >= 0).all() and len(tok) == tok.context_start + len(tok.context.vocab) - 1
    again = from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode_rows(texts, starts, ends)[0].tolist() == tok.encode_rows(texts, starts, ends)[0].tolist()


def test_mention_baseline_is_scikit_learns_two_block_tfidf_svm_on_real_mentions(tmp_path):
    """mention-tfidf-linear on a real entity dataset (drugs-target, fold 0) against scikit-learn's own
    FeatureUnion of two TfidfVectorizers (the mention's char n-grams, the context words' 1-2-grams)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.svm import LinearSVC

    from seqlab.data.select import load_splits, prepare_data
    from seqlab.tasks.entity import EntityClassifier
    from seqlab.tokenizers.ngrams import MentionNgramTokenizer
    from seqlab.train.driver import model_kwargs, prepare

    data_cfg, model_cfg = DataConfig(dataset="drugs-target", fold=0), ModelConfig(model="mention-tfidf-linear")
    prepared = prepare(data_cfg, model_cfg)
    kwargs = model_kwargs(prepared, model_cfg)
    model = build_model("mention-tfidf-linear", vocab_size=prepared.vocab_size, num_classes=len(prepared.labels),
                        **kwargs)
    metrics = model.fit_splits(prepared.splits["train"], prepared.splits["validation"], log=lambda m: None)

    frames = load_splits(prepare_data(data_cfg), data_cfg)
    labels = prepared.labels

    def mentions(df):
        return [t[a:b] for t, a, b in zip(df["text"], df["start"], df["end"])]

    def contexts(df):
        return MentionNgramTokenizer.contexts(df["text"], df["start"], df["end"], 5)

    union = FeatureUnion([
        ("mention", make_pipeline(FunctionTransformer(mentions), TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))),
        ("context", make_pipeline(FunctionTransformer(contexts), TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True)))])
    train, test = frames["train"], frames["test"]
    svm = LinearSVC(C=metrics["c"], class_weight="balanced", random_state=0)
    svm.fit(union.fit_transform(train), train["label"].map(labels.index))
    want = svm.decision_function(union.transform(test))
    split = prepared.splits["test"]
    with torch.no_grad():
        got = model(torch.from_numpy(pad_rows(split, np.arange(len(split)))))["logits"].numpy()
    assert kwargs["context_start"] == len(union.transformer_list[0][1][-1].vocabulary_) + 1
    np.testing.assert_allclose(got * metrics["temperature"], want, atol=1e-4)

    # its checkpoint serves the same answers through the entity predictor
    meta = {"task": "entity", "model": {"name": "mention-tfidf-linear", "kwargs": kwargs}, "labels": labels,
            "vocab_size": prepared.vocab_size, "epoch": 1, "metrics": {}, "data": {"name": "drugs-target"},
            "max_len": data_cfg.max_len}
    checkpoint.save(tmp_path, model=model, optimizer=None, meta=meta, tokenizer=prepared.tokenizer)
    preds = EntityClassifier(tmp_path).predict(test.reset_index(drop=True))
    assert [p["label"] for p in preds] == [labels[i] for i in want.argmax(1)]
