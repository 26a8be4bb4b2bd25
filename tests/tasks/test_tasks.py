import math

import numpy as np
import torch

from seqlab.tasks.classify import Classification
from seqlab.tasks.encoding import EncodedSplit, encode, label_ids
from seqlab.tasks.generate import LanguageModel
from seqlab.tokenizers import from_dict
from seqlab.tokenizers.chars import CharTokenizer
from seqlab.tokenizers.words import WordTokenizer


def test_char_tokenizer_round_trip():
    tok = CharTokenizer.build(["abc", "cab!"])
    assert tok.vocab[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] and len(tok) == 8
    ids = tok.encode("ab?c")
    assert ids[0] == 2 and ids[-1] == 3 and ids[3] == 1  # '?' is unknown
    assert tok.decode(ids) == "abc" and tok.decode(tok.encode("cab")[1:] + [5, 6]) == "cab"
    again = from_dict(tok.to_dict())
    assert isinstance(again, CharTokenizer) and again.encode("ab?c") == ids
    word = WordTokenizer.build(["a b", "b c"], max_size=10, min_freq=1, max_len=5)
    assert isinstance(from_dict(word.to_dict()), WordTokenizer)


def test_windows_predict_every_character_once():
    tok = CharTokenizer.build(["abcdefghij"])
    task = LanguageModel()
    split = encode(tok, ["abcdefghij", "abc"], np.array([0, 1]), task, max_len=4)
    # "<bos>abcdefghij<eos>" has 12 ids -> 11 predictions -> windows of 4, 4, 3 (+ "<bos>abc<eos>": 4)
    assert split.lengths.tolist() == [5, 5, 4, 5] and split.labels.tolist() == [0, 0, 0, 1]
    batch = task.collate(split, np.arange(len(split)))
    targets = batch["targets"][batch["targets"] != -100]
    assert len(targets) == 11 + 4
    assert tok.decode(batch["targets"][0].tolist()) == "abcd" and tok.decode(batch["tokens"][1].tolist()) == "defg"
    assert batch["lengths"].tolist() == [4, 4, 3, 4]


def test_language_model_metrics_are_nats_per_character():
    task = LanguageModel()
    logits = torch.zeros(1, 3, 5)  # uniform over 5 ids: ln 5 nats per character
    batch = {"targets": torch.tensor([[1, 2, -100]])}
    m = task.summarise(task.stats(logits, batch))
    assert math.isclose(m["nats_per_char"], math.log(5), rel_tol=1e-6)
    assert math.isclose(m["bits_per_char"], math.log2(5), rel_tol=1e-6)
    assert task.loss(logits, batch).item() == m["nats_per_char"]


def test_classification_stats_sum_to_the_confusion_matrix():
    task = Classification(3)
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0]])
    stats = task.stats(logits, {"labels": torch.tensor([0, 1, 2])})
    assert stats.shape == (task.size,)
    m = task.summarise(stats + stats)  # two identical batches
    assert math.isclose(m["accuracy"], 2 / 3) and math.isclose(m["macro_f1"], (1 + 2 / 3 + 0) / 3)
    per_class = task.details(stats + stats, ["a", "b", "c"])["per_class_f1"]
    assert per_class == {"a": 1.0, "b": round(2 / 3, 4), "c": 0.0}
    assert LanguageModel().details(torch.zeros(3), []) == {}


def test_unknown_labels_are_dropped():
    tok = WordTokenizer.build(["a b", "b c"], max_size=10, min_freq=1, max_len=5)
    y = label_ids(["x", "z", "y"], ["x", "y"])
    assert y.tolist() == [0, -1, 1]
    split = encode(tok, ["a", "b", "c b"], y, Classification(2), max_len=5)
    assert isinstance(split, EncodedSplit) and split.labels.tolist() == [0, 1] and split.lengths.tolist() == [1, 2]


def test_optional_hooks_keep_their_defaults():
    import torch

    from seqlab.tasks import make_task

    for name in ("classify", "generate", "entity", "molecule"):
        task = make_task(name, 3)
        assert task.sampler(None, None, 0) is None  # nothing sampled per epoch unless asked
        assert task.name == name and task.kind and task.metric.startswith("val_")
    assert make_task("generate", 0).details(torch.zeros(3), ["a"]) == {}
    assert set(make_task("classify", 2).details(torch.zeros(5), ["a", "b"])) == {"per_class_f1", "per_class",
                                                                                 "confusion"}


def test_balanced_class_weights_match_scikit_learn_and_weigh_the_loss():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    task = Classification(3)
    weights = task.weigh_classes(labels)
    assert np.allclose(weights.numpy(), compute_class_weight("balanced", classes=np.arange(3), y=labels))
    assert math.isclose(float(weights[torch.from_numpy(labels)].mean()), 1.0, rel_tol=1e-6)  # 1 per example

    torch.manual_seed(0)
    logits, rare = torch.randn(5, 3), {"labels": torch.full((5,), 2)}
    plain = torch.nn.functional.cross_entropy(logits, rare["labels"])
    # a batch of the rarest class weighs its weight (10/3) times its plain mean, not the same (torch's weighted mean)
    assert math.isclose(float(task.loss(logits, rare)), float(plain) * float(weights[2]), rel_tol=1e-5)
    assert math.isclose(float(Classification(3).loss(logits, rare)), float(plain), rel_tol=1e-6)


def test_class_weight_takes_none_or_balanced():
    import pytest

    from seqlab.config import TrainConfig
    from seqlab.errors import SeqlabError

    assert TrainConfig(class_weight="balanced").class_weight == "balanced"
    with pytest.raises(SeqlabError, match="class_weight must be none or balanced"):
        TrainConfig(class_weight="inverse")
