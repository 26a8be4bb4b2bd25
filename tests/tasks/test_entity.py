"""Entity-mention models (write-up 003): span encoding, the LSTM+CA equations, exactness under padding,
the datasets' folds and the user-data paths (brat folders, mention tables), without Ray."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.config import DataConfig, ModelConfig
from seqlab.data.select import load_split, prepare_data
from seqlab.errors import SeqlabError
from seqlab.models import build_model
from seqlab.models.entity import LSTMCA, TDLSTM, reverse_rows, span_tokens
from seqlab.tasks import make_task
from seqlab.tasks.encoding import encode_mention
from seqlab.tokenizers.words import WordTokenizer
from seqlab.train.driver import prepare

SENTENCE = "LMP1 upregulates IL10 and constitutively activates Stat3 in B cells."


def word_tokenizer(texts=(SENTENCE,), max_len=50):
    return WordTokenizer.build(list(texts), max_size=100, min_freq=1, max_len=max_len)


# --- span encoding ---------------------------------------------------------------------------------

def test_span_is_exact_for_word_and_wordpiece_tokenizers():
    from seqlab.tokenizers.wordpiece import WordPieceTokenizer

    start, end = SENTENCE.index("IL10"), SENTENCE.index("IL10") + 4
    tok = word_tokenizer()
    ids, a, b = encode_mention(tok, SENTENCE, start, end, 50)
    assert [tok.vocab[i] for i in ids[a:b]] == ["il10"]
    words, a2, b2 = encode_mention(tok, SENTENCE, start, end, 50, words=True)
    assert (a2, b2) == (a, b) and words[a:b] == ["il10"] and len(words) == len(ids)
    wp = WordPieceTokenizer.pretrained(max_len=64)
    ids, a, b = encode_mention(wp, SENTENCE, start, end, 64)
    assert ids[0] == wp.cls_id and ids[-1] == wp.sep_id
    assert wp.backend.decode(ids[a:b]).replace(" ", "") == "il10"


def test_long_sentence_keeps_a_window_around_the_mention():
    text = " ".join(f"w{i}" for i in range(100))
    start = text.index("w70 ")
    tok = word_tokenizer([text])
    ids, a, b = encode_mention(tok, text, start, start + 3, max_len=11)
    assert len(ids) == 11 and [tok.vocab[i] for i in ids[a:b]] == ["w70"]
    assert [tok.vocab[i] for i in ids] == [f"w{i}" for i in range(65, 76)]  # 5 words each side
    ids, a, b = encode_mention(tok, text, 0, 2, max_len=11)  # at the start: all room goes right
    assert (a, b) == (0, 1) and [tok.vocab[i] for i in ids] == [f"w{i}" for i in range(11)]


# --- models -----------------------------------------------------------------------------------------

def _batch(rows, spans):
    lengths = torch.tensor([len(r) for r in rows])
    tokens = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    return tokens, lengths, torch.tensor(spans)


def test_lstm_ca_follows_the_thesis_equations():
    torch.manual_seed(0)
    model = LSTMCA(vocab_size=30, num_classes=3, embed_dim=6, hidden=5, dropout=0.0).eval()
    tokens, lengths, spans = _batch([[3, 4, 5, 6, 7], [8, 9, 10]], [[1, 3], [2, 3]])
    out = model(tokens, lengths, spans)
    # by hand for row 0: context = the whole sentence, entity = tokens 1..2
    h_c, _ = model.context_lstm(model.embed(tokens[:1]))
    h_e, _ = model.entity_lstm(model.embed(tokens[:1, 1:3]))
    c_avg, e_avg = h_c[0].mean(0), h_e[0].mean(0)
    alpha = torch.softmax(torch.tanh(h_c[0] @ model.w_a @ e_avg + model.b_a), 0)
    beta = torch.softmax(torch.tanh(h_e[0] @ model.w_a @ c_avg + model.b_a), 0)
    rep = torch.cat([alpha @ h_c[0], beta @ h_e[0]])
    assert torch.allclose(out["context_attention"][0], alpha, atol=1e-6)
    assert torch.allclose(out["entity_attention"][0, :2], beta, atol=1e-6)
    assert torch.allclose(out["logits"][0], model.out(rep), atol=1e-6)
    # attention is a distribution over the real tokens only
    assert out["context_attention"][1, 3:].abs().sum() == 0
    assert torch.allclose(out["context_attention"].sum(1), torch.ones(2))
    assert "penalty" not in out


@pytest.mark.parametrize("name", ["lstm-ca", "lstm-ca-feat", "td-lstm", "sentence-lstm", "sentence-cnn"])
def test_padding_does_not_change_a_prediction(name):
    torch.manual_seed(0)
    kw = {"embed_dim": 8, "hidden": 6} if "cnn" not in name else {"embed_dim": 8, "filters": 6}
    model = build_model(name, vocab_size=40, num_classes=3, **kw).eval()
    tokens, lengths, spans = _batch([[3, 4, 5, 6, 7, 8, 9], [10, 11, 12]], [[2, 4], [0, 1]])
    feats = torch.randn(2, getattr(model, "features", 0) or 0)
    alone, _, _ = _batch([[10, 11, 12]], [[0, 1]])
    with torch.no_grad():
        both = model(tokens, lengths, spans, feats)["logits"]
        single = model(alone, lengths[1:], spans[1:], feats[1:])["logits"]
    assert torch.allclose(both[1], single[0], atol=1e-5)


def test_td_lstm_reads_left_and_right_context_exactly():
    torch.manual_seed(0)
    model = TDLSTM(vocab_size=30, num_classes=2, embed_dim=4, hidden=3, dropout=0.0).eval()
    tokens, lengths, spans = _batch([[3, 4, 5, 6, 7, 8], [9, 10]], [[2, 4], [1, 2]])
    out = model(tokens, lengths, spans)["logits"]
    x = model.embed(tokens[0])
    h_left, _ = model.left(x[:4][None])  # tokens 0..3: up to the mention's end
    h_right, _ = model.right(x[2:6].flip(0)[None])  # tokens 5..2: from the end down to its start
    assert torch.allclose(out[0], model.out(torch.cat([h_left[0, -1], h_right[0, -1]])), atol=1e-6)


def test_helpers_and_l2_term():
    tokens, lengths, spans = _batch([[3, 4, 5, 6], [7, 8]], [[1, 3], [1, 2]])
    ids, n = span_tokens(tokens, spans)
    assert ids.tolist() == [[4, 5], [8, 0]] and n.tolist() == [2, 1]
    assert reverse_rows(tokens, lengths).tolist() == [[6, 5, 4, 3], [8, 7, 0, 0]]
    model = LSTMCA(vocab_size=10, num_classes=2, embed_dim=4, hidden=3, l2=0.5).train()
    out = model(tokens, lengths, spans)
    weights = sum(p.pow(2).sum() for n_, p in model.named_parameters() if p.dim() > 1 and not n_.startswith("embed"))
    assert torch.allclose(out["penalty"], 0.5 * weights)
    task = make_task("entity", 2)
    labels = torch.tensor([0, 1])
    ce = torch.nn.functional.cross_entropy(out["logits"], labels)
    assert torch.allclose(task.loss(out, {"labels": labels}), ce + out["penalty"])


# --- data -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bionlp-entities", "bionlp-triggers", "drugs-target"])
def test_builtin_mention_datasets(name):
    prepared = prepare_data(DataConfig(dataset=name))
    rows = pd.concat([prepared.split(s) for s in ("train", "validation", "test")])
    assert (rows.apply(lambda r: r["text"][r["start"]:r["end"]] == r["mention"], axis=1)).all()
    assert rows.groupby("doc")["fold"].nunique().max() == 1  # a document sits in one fold
    assert set(rows["fold"]) == {0, 1, 2, 3, 4} and (prepared.split("test")["fold"] == 0).all()
    card = prepared.card
    assert "fold" in card["split_rule"] and card["sha256"]
    if name == "bionlp-entities":
        assert {"Protein", "Organism", "Chemical"} <= set(card["classes"]) and set(rows["domain"]) == {
            "GE", "EPI", "ID", "REL"}
    if name == "bionlp-triggers":
        assert {"Positive_regulation", "Gene_expression"} <= set(card["classes"]) and (rows["kind"] == "trigger").all()
    if name == "drugs-target":
        assert set(card["classes"]) == {"negative", "neutral", "positive"} and len(rows) > 250


def test_folds_and_domains_select_disjoint_documents():
    cfg = DataConfig(dataset="bionlp-entities", fold=3)
    prepared = prepare_data(cfg)
    train, test = (load_split(prepared, s, cfg) for s in ("train", "test"))
    assert (test["fold"] == 3).all() and not set(train["doc"]) & set(test["doc"])
    cfg = DataConfig(dataset="bionlp-entities", train_domain="GE", test_domain="REL")
    train, test = (load_split(prepared, s, cfg) for s in ("train", "test"))
    assert set(train["domain"]) == {"GE"} and set(test["domain"]) == {"REL"}
    with pytest.raises(SeqlabError, match="give --fold too"):
        load_split(prepared, "test", DataConfig(dataset="bionlp-entities", train_domain="GE", test_domain="GE"))
    with pytest.raises(SeqlabError, match="'XX' is not a domain of bionlp-entities; domains are EPI, GE, ID, REL"):
        load_split(prepared, "test", DataConfig(dataset="bionlp-entities", train_domain="XX"))
    with pytest.raises(SeqlabError, match="sentences2 has no 'fold' column"):
        cfg = DataConfig(dataset="sentences2", fold=1)
        load_split(prepare_data(cfg), "test", cfg)


def test_models_and_data_of_the_other_task_are_refused():
    with pytest.raises(SeqlabError, match="model 'lstm-ca' classifies entity mentions, but sentences2 has no start"):
        prepare(DataConfig(dataset="sentences2"), ModelConfig(model="lstm-ca"))
    with pytest.raises(SeqlabError, match="bionlp-triggers holds entity mentions; choose an entity model: lstm-ca"):
        prepare(DataConfig(dataset="bionlp-triggers"), ModelConfig(model="lstm"))


def test_features_are_standardised_on_the_training_rows():
    prepared = prepare(DataConfig(dataset="bionlp-triggers", fold=1), ModelConfig(model="lstm-ca-feat"))
    train = prepared.splits["train"]
    assert train.features.shape == (len(train), len(prepared.card["features"]["names"]))
    informative = train.features.std(0) > 1e-3
    assert np.allclose(train.features.mean(0), 0, atol=1e-4) and np.allclose(train.features.std(0)[informative], 1,
                                                                              atol=1e-3)


def _brat_folder(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(12):
        text = (f"Patient {i} took Lipitor and had muscle pain. The pain went away.\n"
                f"No side effects from Voltaren for patient {i}.")
        ann = [f"T1\tDrug {text.index('Lipitor')} {text.index('Lipitor') + 7}\tLipitor",
               f"T2\tADR {text.index('muscle')} {text.index('muscle') + 6};{text.index(' pain.') + 1} "
               f"{text.index(' pain.') + 5}\tmuscle pain",
               f"T3\tDrug {text.index('Voltaren')} {text.index('Voltaren') + 8}\tVoltaren",
               f"T4\tSymptom {text.index('The pain') + 4} {text.index('The pain') + 8}\tpain"]
        (folder / f"doc{i:02d}.txt").write_text(text)
        (folder / f"doc{i:02d}.ann").write_text("\n".join(ann) + "\n")
    return folder


def test_a_brat_folder_with_a_discontinuous_span_trains_directly(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_HOME", str(tmp_path / "home"))
    folder = _brat_folder(tmp_path)
    inputs = prepare(DataConfig(dataset=str(folder), min_freq=1, fold=2), ModelConfig(model="lstm-ca"))
    assert inputs.labels == ["ADR", "Drug", "Symptom"] and inputs.task == "entity"
    prepared = prepare_data(DataConfig(dataset=str(folder)))
    rows = pd.concat([prepared.split(s) for s in ("train", "validation", "test")])
    adr = rows[rows["label"] == "ADR"].iloc[0]
    assert adr["mention"] == "muscle pain" and adr["fragments"].count(";") == 1  # two fragments
    train = inputs.splits["train"]
    assert (train.spans[:, 1] > train.spans[:, 0]).all()


def test_discontinuous_span_covers_its_fragments(tmp_path):
    from seqlab.data.spans import read_brat

    (tmp_path / "d.txt").write_text("The pain in my left leg got worse.")
    (tmp_path / "d.ann").write_text("T1\tADR 4 8;20 23\tpain leg\n")
    text, mentions = read_brat(tmp_path / "d.txt")
    assert mentions[0].fragments == ((4, 8), (20, 23))
    from seqlab.data.spans import mention_rows

    row = mention_rows("d", text, mentions)[0]
    assert row["text"][row["start"]:row["end"]] == "pain in my left leg" and row["fragments"] == "4-8;20-23"


def test_cli_gives_one_line_for_offsets_that_do_not_match(tmp_path):
    folder = _brat_folder(tmp_path)
    (folder / "doc03.ann").write_text("T1\tDrug 0 7\tLipitor\n")  # the text starts with "Patient"
    env = {"SEQLAB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "seqlab.cli", "data", "--dataset", str(folder)], capture_output=True,
                         text=True, env={**env, "PYTHONPATH": ":".join(sys.path)})
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert "doc03.ann: line 1 (T1): offsets 0-7 read 'Patient'" in line and "annotation says 'Lipitor'" in line


def test_a_jsonl_mention_table(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_HOME", str(tmp_path / "home"))
    rows = [{"text": f"Aspirin {i} helped my headache.", "start": 0, "end": 7, "label": "drug", "doc": f"d{i}"}
            for i in range(10)] + [{"text": f"My headache {i} is gone.", "start": 3, "end": 11, "label": "symptom",
                                    "doc": f"e{i}"} for i in range(10)]
    path = tmp_path / "mentions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    prepared = prepare_data(DataConfig(dataset=str(path)))
    assert prepared.card["classes"] == ["drug", "symptom"] and "fold" in prepared.split("train")
    rows[4]["end"] = 99
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(SeqlabError, match="row 5 has start=0, end=99"):
        prepare_data(DataConfig(dataset=str(path)))


def test_serve_finds_each_span_in_its_sentence_and_refuses_bad_ones():
    from seqlab.errors import BadInput
    from seqlab.tasks.entity import CharSpan
    from seqlab.tasks.entity import request_rows as mention_rows

    text = "Stat3 is phosphorylated by JAK2. This binding activates it."
    a = text.index("activates")
    rows = mention_rows(text, [CharSpan(start=a, end=a + 9)], max_spans=4, max_chars=500)
    assert rows == [{"text": "This binding activates it.", "start": 13, "end": 22}]
    for spans, message in [([], "spans is empty"), ([CharSpan(start=4, end=2)], "spans[0] is out of range"),
                           ([CharSpan(start=0, end=99)], f"expected 0 <= start < end <= {len(text)}")]:
        with pytest.raises(BadInput, match=message.replace("[", r"\[").replace("]", r"\]")):
            mention_rows(text, spans, max_spans=4, max_chars=500)
