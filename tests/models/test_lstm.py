import json

import numpy as np
import pytest
import torch
from conftest import batch

from seqlab import checkpoint
from seqlab.errors import SeqlabError
from seqlab.models import build_model
from seqlab.tasks.batches import bucket_batches
from seqlab.tasks.classify import Classification
from seqlab.tasks.encoding import EncodedSplit


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["max", "last"])
def test_shapes_and_padding_does_not_change_outputs(bidirectional, pooling):
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=50, num_classes=4, embed_dim=8, hidden=16,
                        bidirectional=bidirectional, pooling=pooling).eval()
    tokens, lengths = batch([5, 3, 7])
    logits = model(tokens, lengths)
    assert logits.shape == (3, 4)
    more_padding, _ = batch([5, 3, 7], pad_to=12)
    assert torch.allclose(model(more_padding, lengths), logits, atol=1e-5)
    # each row alone gives the same answer as inside the batch
    alone = model(tokens[1:2, :3], lengths[1:2])
    assert torch.allclose(alone, logits[1:2], atol=1e-5)


def test_one_step_lowers_the_loss():
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=50, num_classes=3, embed_dim=16, hidden=32, dropout=0.0,
                        spatial_dropout=0.0)
    tokens, lengths = batch([6, 4, 8, 5])
    b = {"labels": torch.tensor([0, 1, 2, 1])}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = Classification(3).loss(model(tokens, lengths), b)
    before.backward()
    opt.step()
    after = Classification(3).loss(model(tokens, lengths), b)
    assert after < before


def test_save_load_gives_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    kwargs = {"embed_dim": 8, "hidden": 16, "dropout": 0.1, "spatial_dropout": 0.0, "bidirectional": False,
              "pooling": "max"}
    model = build_model("lstm", vocab_size=40, num_classes=3, **kwargs).eval()
    opt = torch.optim.AdamW(model.parameters())
    tok = {"kind": "word", "max_len": 10, "vocab": ["<pad>", "<unk>"] + [f"w{i}" for i in range(38)]}
    meta = {"model": {"name": "lstm", "kwargs": kwargs}, "labels": ["a", "b", "c"], "vocab_size": 40, "epoch": 0,
            "metrics": {}}
    checkpoint.save(tmp_path, model=model, optimizer=opt, meta=meta, tokenizer=tok)
    loaded, tokenizer, meta2 = checkpoint.load_model(tmp_path)
    tokens, lengths = batch([4, 2], vocab=40)
    assert torch.equal(loaded(tokens, lengths), model(tokens, lengths))
    assert tokenizer.vocab == tok["vocab"] and meta2["labels"] == ["a", "b", "c"]
    assert checkpoint.load_optimizer_state(tmp_path)["param_groups"]


def test_registry_errors_name_the_choices():
    with pytest.raises(SeqlabError, match="unknown model 'gru'; available: char-lstm, cnn, lstm, lstm-ca, lstm-ca-feat"):
        build_model("gru", vocab_size=5, num_classes=2)
    with pytest.raises(SeqlabError, match="no option 'width'"):
        build_model("lstm", vocab_size=5, num_classes=2, width=3)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(SeqlabError, match="not a seqlab checkpoint"):
        checkpoint.load_model(tmp_path)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_bucket_batches_shard_evenly_and_cover_everything(world):
    lengths = np.random.default_rng(0).integers(1, 100, size=101)
    shards = [bucket_batches(lengths, 8, rank=r, world=world, seed=5) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # DDP: every rank takes the same number of steps
    seen = np.concatenate([np.concatenate(s) for s in shards])
    assert set(seen.tolist()) == set(range(101))
    assert len(seen) == -(-101 // world) * world
    # batches are length-bucketed: little padding compared with random batches
    def padding(batches):
        return sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)

    unsorted = np.random.default_rng(1).permutation(np.concatenate(shards[0]))
    assert padding(shards[0]) < 0.5 * padding([unsorted[i : i + 8] for i in range(0, len(unsorted), 8)])
    again = bucket_batches(lengths, 8, rank=0, world=world, seed=5)
    assert all((a == b).all() for a, b in zip(again, shards[0]))


def test_collate_pads_right():
    split = EncodedSplit(np.array([5, 6, 7, 8], np.int32), np.array([0, 3, 4]), np.array([1, 0]))
    b = Classification(2).collate(split, np.array([1, 0]))
    assert b["tokens"].tolist() == [[8, 0, 0], [5, 6, 7]]
    assert b["lengths"].tolist() == [1, 3] and b["labels"].tolist() == [0, 1]


def test_resuming_with_other_settings_is_refused(tmp_path):
    from seqlab.config import DataConfig, ModelConfig
    from seqlab.train.driver import Prepared, check_resumable, signature

    prepared = Prepared(task="classify", labels=["a", "b"], tokenizer={"vocab": ["<pad>", "<unk>", "a"]}, vocab_size=3,
                        card={}, data_config=DataConfig(dataset="cfpb", max_len=10), splits={})
    sig = signature(prepared, ModelConfig())
    assert sig == signature(prepared, ModelConfig())
    assert sig != signature(prepared, ModelConfig(options={"hidden": 64}))
    run = tmp_path / "run"
    check_resumable(str(run), sig)  # nothing there yet
    (run / "epoch_002").mkdir(parents=True)
    (run / "epoch_002" / "meta.json").write_text(json.dumps({"signature": sig}))
    check_resumable(str(run), sig)
    with pytest.raises(SeqlabError, match="other model or data settings.*choose a new --name"):
        check_resumable(str(run), signature(prepared, ModelConfig(options={"hidden": 64})))


@pytest.mark.parametrize("field,value", [("lr", 0.01), ("batch_size", 32), ("seed", 1), ("precision", "fp32")])
def test_resuming_with_another_lr_batch_size_seed_or_precision_is_refused_naming_it(tmp_path, field, value):
    import dataclasses

    from seqlab.config import TrainConfig
    from seqlab.train.driver import check_resumable

    trained = TrainConfig(lr=0.002, batch_size=64, seed=0, precision="bf16")
    run = tmp_path / "run"
    (run / "epoch_001").mkdir(parents=True)
    (run / "epoch_001" / "meta.json").write_text(json.dumps({"signature": "s", "train": dataclasses.asdict(trained)}))
    check_resumable(str(run), "s", trained)  # the same settings resume
    changed = dataclasses.replace(trained, **{field: value})
    with pytest.raises(SeqlabError, match=f"was trained with {field} .*, now {value}; .*--allow-changed"):
        check_resumable(str(run), "s", changed)
    check_resumable(str(run), "s", dataclasses.replace(changed, allow_changed=True))  # on purpose


def test_stacked_lstm_is_seed_002():
    model = build_model("lstm-stacked", vocab_size=50, num_classes=9).eval()
    assert (model.lstm.hidden_size, model.lstm2.hidden_size) == (50, 20)
    assert [type(m).__name__ for m in model.head] == ["Dropout", "Linear"] and model.head[1].in_features == 20
    tokens, lengths = batch([5, 3, 7])
    logits = model(tokens, lengths)
    assert logits.shape == (3, 9)
    more_padding, _ = batch([5, 3, 7], pad_to=12)
    assert torch.allclose(model(more_padding, lengths), logits, atol=1e-5)


def test_frozen_embeddings_do_not_move():
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=50, num_classes=3, embed_dim=8, hidden=8, freeze_embeddings=True)
    before = model.embed.weight.clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    tokens, lengths = batch([4, 6])
    Classification(3).loss(model(tokens, lengths), {"labels": torch.tensor([0, 2])}).backward()
    opt.step()
    assert torch.equal(model.embed.weight, before) and not model.embed.weight.requires_grad


@pytest.mark.parametrize("name", ["lstm", "lstm-stacked"])
def test_packed_and_padded_forward_only_lstm_agree(name):
    # padding then masking is exact for a forward-only LSTM; packing is the reference
    torch.manual_seed(0)
    model = build_model(name, vocab_size=50, num_classes=3).eval()
    tokens, lengths = batch([3, 9, 5, 12])
    padded = model(tokens, lengths)
    model.pack = True
    assert torch.allclose(model(tokens, lengths), padded, atol=1e-5)


WORD_MODELS = ["lstm", "lstm-stacked", "cnn", "lstm-ca", "lstm-ca-feat", "td-lstm", "sentence-lstm", "sentence-cnn"]


@pytest.mark.parametrize("name", WORD_MODELS)
def test_pretrained_vectors_go_to_the_builder_and_leave_the_other_layers_as_they_were(name):
    from seqlab.models import MODELS

    vectors = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    torch.manual_seed(0)
    plain = build_model(name, vocab_size=20, num_classes=3, embed_dim=8)
    torch.manual_seed(0)
    started = build_model(name, vocab_size=20, num_classes=3, embed_dim=8, vectors=vectors, freeze_embeddings=True)
    a, b = plain.state_dict(), started.state_dict()
    embedding = [k for k in a if k.endswith("embed.weight") and not k.startswith("bow")]
    assert len(embedding) == 1 and torch.equal(b[embedding[0]], torch.from_numpy(vectors))
    assert all(torch.equal(a[k], b[k]) for k in a if k not in embedding)  # same random draws for the rest
    assert not dict(started.named_parameters())[embedding[0]].requires_grad
    assert sorted(m for m, e in MODELS.items() if e.takes_vectors) == sorted(WORD_MODELS)


def test_vectors_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"vectors have shape \(20, 4\); the embedding is \(20, 8\)"):
        build_model("lstm", vocab_size=20, num_classes=3, embed_dim=8, vectors=np.zeros((20, 4), np.float32))
