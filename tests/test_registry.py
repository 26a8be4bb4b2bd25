"""Every registered model through the task interface: shapes, one step lowers the loss, save -> load."""

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab import checkpoint
from seqlab.models import MODELS, build_model
from seqlab.tasks import make_task
from seqlab.tasks.encoding import label_ids
from seqlab.tokenizers.chars import CharTokenizer
from seqlab.tokenizers.words import WordTokenizer

TEXTS = ["the pill gave me acne and cramps", "my skin cleared up in a month", "pain in my back every day",
         "i felt low and tired for weeks"]
LABELS = ["Birth Control", "Acne", "Pain", "Depression"]
SMALL = {"lstm": {"embed_dim": 8, "hidden": 8}, "lstm-stacked": {"embed_dim": 8, "hidden": 8, "hidden2": 4},
         "cnn": {"embed_dim": 8, "filters": 8, "kernel_size": 3}, "minilm": {},
         "char-lstm": {"hidden": 16, "conditional": True}, "lstm-ca": {"embed_dim": 8, "hidden": 8},
         "lstm-ca-feat": {"embed_dim": 8, "hidden": 8}, "td-lstm": {"embed_dim": 8, "hidden": 8},
         "sentence-lstm": {"embed_dim": 8, "hidden": 8}, "sentence-cnn": {"embed_dim": 8, "filters": 8},
         "sentence-minilm": {}, "smiles-vae": {"embed_dim": 8, "hidden": 16, "latent": 4, "word_dropout": 0.0},
         "smiles-rnn": {"embed_dim": 8, "hidden": 16}, "smiles-ae": {"hidden": 16, "hidden2": 8},
         "tfidf-linear": {"min_df": 1}, "mention-tfidf-linear": {"min_df": 1, "context_words": 2}}
MOLECULES = ["CCO", "c1ccccc1Cl", "CC(N)C(=O)O", "C[C@@H](N)O"]
# entity models: a mention (start, end characters) in each text
SPANS = [(9, 13), (3, 7), (0, 4), (11, 14)]


def logits(out):
    return out["logits"] if isinstance(out, dict) else out


def tokenizer_for(kind: str):
    if kind == "word":
        return WordTokenizer.build(TEXTS, max_size=100, min_freq=1, max_len=20)
    if kind == "char":
        return CharTokenizer.build(TEXTS)
    if kind == "smiles":
        from seqlab.tokenizers.smiles import SmilesTokenizer

        return SmilesTokenizer.build(MOLECULES)
    if kind == "selfies":
        from seqlab.tokenizers.selfies import SelfiesTokenizer

        return SelfiesTokenizer.build(MOLECULES)
    if kind == "ngrams":
        from seqlab.tokenizers.ngrams import NgramTokenizer

        return NgramTokenizer.build(TEXTS, min_df=1)
    if kind == "mention-ngrams":
        from seqlab.tokenizers.ngrams import MentionNgramTokenizer

        return MentionNgramTokenizer.build(TEXTS, *zip(*SPANS), min_df=1, context_words=2)
    from seqlab.tokenizers.wordpiece import WordPieceTokenizer

    return WordPieceTokenizer.pretrained(max_len=20)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model(name, tmp_path):
    assert set(SMALL) == set(MODELS), "a new model needs its small settings here"
    spec = MODELS[name]
    tok = tokenizer_for(spec.tokenizer)
    labels = sorted(LABELS)
    task = make_task(spec.task, len(labels))
    frame = pd.DataFrame({"text": MOLECULES if spec.task == "molecule" else TEXTS, "start": [a for a, _ in SPANS], "end": [b for _, b in SPANS]})
    features = None
    if spec.features:
        from seqlab.data.features import mention_features

        features = mention_features(TEXTS, frame["start"].to_numpy(), frame["end"].to_numpy())
    split = task.encode_frame(tok, frame, label_ids(LABELS, labels), max_len=12, features=features)
    batch = task.collate(split, np.arange(len(split)))
    torch.manual_seed(0)
    sizes = {"max_len": 12} if spec.takes_max_len else {}
    sizes |= {"dropout": 0.0} if "dropout" in spec.options() else {}
    model = build_model(name, vocab_size=len(tok), num_classes=len(labels), **sizes, **SMALL[name])

    out = logits(task.forward(model, batch))
    b, t = batch["tokens"].shape
    shapes = {"generate": (b, t, len(tok)), "molecule": (b, t - 1, len(tok))}
    assert out.shape == shapes.get(spec.task, (b, len(labels)))

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3 if "minilm" in name else 1e-2)
    before = task.loss(task.forward(model, batch), batch)
    before.backward()
    opt.step()
    model.eval()  # no dropout: the comparison below is exact
    after = task.loss(task.forward(model, batch), batch)
    assert after < before

    meta = {"task": spec.task, "model": {"name": name, "kwargs": {**sizes, **SMALL[name]}}, "labels": labels,
            "vocab_size": len(tok), "epoch": 0, "metrics": {}}
    checkpoint.save(tmp_path, model=model, optimizer=opt, meta=meta, tokenizer=tok.to_dict())
    loaded, tok2, meta2 = checkpoint.load_model(tmp_path)
    with torch.no_grad():
        assert torch.allclose(logits(task.forward(loaded, batch)), logits(task.forward(model, batch)), atol=1e-6)
    assert tok2.encode(frame["text"][0]) == tok.encode(frame["text"][0]) and meta2["task"] == spec.task


@pytest.mark.parametrize("name", sorted(n for n, e in MODELS.items() if e.selfies))
def test_molecule_models_on_selfies(name, tmp_path):
    """--representation selfies: the same model on SELFIES symbols; a loaded checkpoint samples SMILES."""
    from rdkit import Chem

    from seqlab.models.molecule import sample_smiles
    from seqlab.tokenizers.selfies import SelfiesTokenizer

    assert {"smiles-vae", "smiles-rnn"} <= {n for n, e in MODELS.items() if e.selfies}
    tok = tokenizer_for("selfies")
    task = make_task("molecule", 1)
    split = task.encode_frame(tok, pd.DataFrame({"text": MOLECULES}), np.zeros(len(MOLECULES), np.int64), max_len=12)
    batch = task.collate(split, np.arange(len(split)))
    torch.manual_seed(0)
    kwargs = {"max_len": 12, "dropout": 0.0, **SMALL[name]}
    model = build_model(name, vocab_size=len(tok), num_classes=1, **kwargs)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = task.loss(task.forward(model, batch), batch)
    before.backward()
    opt.step()
    model.eval()
    assert task.loss(task.forward(model, batch), batch) < before

    meta = {"task": "molecule", "model": {"name": name, "kwargs": kwargs}, "labels": ["molecule"],
            "vocab_size": len(tok), "epoch": 0, "metrics": {}}
    checkpoint.save(tmp_path, model=model, optimizer=opt, meta=meta, tokenizer=tok.to_dict())
    loaded, tok2, _ = checkpoint.load_model(tmp_path)
    assert isinstance(tok2, SelfiesTokenizer) and tok2.vocab == tok.vocab
    with torch.no_grad():
        assert torch.allclose(task.forward(loaded, batch)["logits"], task.forward(model, batch)["logits"], atol=1e-6)
    smiles = sample_smiles(loaded, tok2, n=100, seed=0)
    assert smiles == sample_smiles(model, tok, n=100, seed=0)
    assert all(Chem.MolFromSmiles(s) is not None for s in smiles)  # every one a molecule, as SMILES
    assert sum(bool(s) for s in smiles) > 75  # "" only where a sample wrote no atom (an untrained model's)
