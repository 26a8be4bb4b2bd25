"""Real Ray: every text model trains through the same job with 2 workers, searches, and serves over HTTP."""

import json
from pathlib import Path

import pandas as pd
import pytest
import requests
from conftest import free_port

from seqlab.cli import run
from seqlab.report import tensorboard_history
from seqlab.tasks.classify import TextClassifier
from seqlab.tasks.generate import TextGenerator

pytestmark = pytest.mark.ray

# (name, flags): tiny slices of real data, one epoch, 2 data-parallel workers
RUNS = {
    "lstm-stacked": ["--dataset", "cfpb", "--model", "lstm-stacked", "--limit", "160", "--max-len", "48"],
    "cnn-word2vec": ["--dataset", "drugs-rating", "--model", "cnn", "--embeddings", "word2vec", "--embed-dim", "32",
                     "--limit", "120", "--max-len", "64", "--min-freq", "1"],
    "minilm": ["--dataset", "sentences2", "--model", "minilm", "--limit", "48", "--max-len", "24",
               "--batch-size", "8"],
    "char-lstm": ["--dataset", "drugs-condition", "--model", "char-lstm", "--conditional", "true", "--limit", "40",
                  "--max-len", "64", "--hidden", "32"],
    # the baseline: fitted by scikit-learn in one pass on one worker, whatever --num-workers says
    "tfidf-linear": ["--dataset", "drugs-condition", "--model", "tfidf-linear", "--limit", "120"],
}


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return tmp_path_factory.mktemp("text-runs")


@pytest.fixture(scope="module")
def trained(ray_local, storage):
    return {name: run(["train", *flags, "--epochs", "1", "--num-workers", "2", "--batch-size", "16", "--name",
                       name, "--storage-path", str(storage)]) for name, flags in RUNS.items()}


@pytest.mark.parametrize("name", RUNS)
def test_every_model_trains_with_two_workers(trained, storage, name):
    out = trained[name]
    ckpt = Path(out["checkpoint"])
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "optimizer.pt", "seqlab_tokenizer.json", "meta.json"}
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["model"]["name"] == RUNS[name][3]
    history = tensorboard_history(storage / name / "tensorboard")
    assert list(history.index) == [1] and "train/loss" in history and "val/loss" in history
    if name == "char-lstm":
        assert meta["task"] == "generate" and 0 < out["test"]["nats_per_char"] < 6
        assert out["test"]["bits_per_char"] > out["test"]["nats_per_char"]
        texts = TextGenerator(ckpt).generate(category="Acne", n=2, length=40, seed=1)
        assert len(texts) == 2 and texts == TextGenerator(ckpt).generate(category="Acne", n=2, length=40, seed=1)
    else:
        assert meta["task"] == "classify" and 0 <= out["test"]["macro_f1"] <= 1
        preds = TextClassifier(ckpt).predict(["this made everything worse", "great, it worked"])
        assert preds[0]["label"] in meta["labels"] and abs(sum(preds[0]["probabilities"].values()) - 1) < 1e-3
    if name == "tfidf-linear":
        assert set(meta["metrics"]) >= {"c", "temperature"} and meta["train"]["num_workers"] == 1
        assert json.loads((ckpt / "seqlab_tokenizer.json").read_text())["kind"] == "ngrams"
    if name == "cnn-word2vec":
        assert meta["data"]["embeddings"]["source"] == "word2vec" and meta["data"]["embeddings"]["coverage"] > 0.3
    if name == "minilm":
        assert json.loads((ckpt / "seqlab_tokenizer.json").read_text())["kind"] == "wordpiece"
        # export -> plain transformers gives the same logits as seqlab's own loading
        import torch
        from transformers import AutoModelForSequenceClassification

        out_dir = storage / "minilm-hf"
        run(["export", "--checkpoint", str(ckpt), "--out", str(out_dir)])
        hf = AutoModelForSequenceClassification.from_pretrained(out_dir).eval()
        clf = TextClassifier(ckpt)
        split = clf.encode(["a fine film"])
        tokens = torch.tensor(split.ids[None, :].astype("int64"))
        with torch.no_grad():
            assert torch.allclose(hf(input_ids=tokens).logits.softmax(-1)[0],
                                  torch.tensor(clf.probabilities(["a fine film"])[0]), atol=1e-5)
        assert hf.config.id2label[0] == meta["labels"][0]


@pytest.mark.parametrize("model,flags,metric", [
    ("lstm-stacked", RUNS["lstm-stacked"][4:], "val_macro_f1"),
    ("char-lstm", ["--dataset", "drugs-condition", "--keep-labels", "Acne", "--limit", "20", "--max-len", "64"],
     "val_nats_per_char"),
])
def test_width_dropout_search_runs_for_each_lstm_model(ray_local, storage, tmp_path, model, flags, metric):
    out = run(["tune", "--model", model, *flags, "--epochs", "1", "--num-samples", "2", "--hidden-min", "8",
               "--hidden-max", "24", "--num-workers", "1", "--search-name", f"search-{model}",
               "--storage-path", str(storage), "--results-dir", str(tmp_path)])
    table = pd.read_csv(out["out_dir"] / "search.csv")
    assert len(table) == 2 and set(table["status"]) == {"ok"} and table["hidden"].between(8, 24).all()
    best = json.loads((out["out_dir"] / "best.json").read_text())
    assert best["metric"] == metric
    # the best trial is the best by the task's direction: lowest nats/char, highest macro-F1
    assert best[metric] == (table[metric].min() if metric == "val_nats_per_char" else table[metric].max())
    if model == "char-lstm":
        assert out["out_dir"].name == "drugs-condition-acne-char-lstm"
        assert "test nats per char" in (out["out_dir"] / "test_metrics.md").read_text()


def test_a_search_over_the_baselines_c_ranks_its_trials(ray_local, storage, tmp_path):
    out = run(["tune", "--model", "tfidf-linear", *RUNS["tfidf-linear"][4:], "--space", "c=grid[0.1, 1]",
               "--search-name", "search-tfidf", "--storage-path", str(storage), "--results-dir", str(tmp_path)])
    table = pd.read_csv(out["out_dir"] / "search.csv")
    assert sorted(table["c"]) == [0.1, 1.0] and set(table["status"]) == {"ok"}
    best = json.loads((out["out_dir"] / "best.json").read_text())
    assert best["val_macro_f1"] == table["val_macro_f1"].max() and 0 <= out["test"]["macro_f1"] <= 1


def test_search_refuses_a_model_without_an_lstm(ray_local, storage, tmp_path):
    from seqlab.errors import SeqlabError

    with pytest.raises(SeqlabError, match="model 'cnn' has no LSTM width to search; searchable models: lstm"):
        run(["tune", "--model", "cnn", "--dataset", "drugs-rating", "--limit", "20", "--storage-path", str(storage),
             "--results-dir", str(tmp_path)])


@pytest.fixture(scope="module")
def served(trained, storage):
    """Every trained model promoted into a registry and served by one Serve application (one start-up
    for the module): ``/v1/models/<name>/...`` reaches each."""
    from ray import serve

    from seqlab import registry
    from seqlab.serve.app import start
    from seqlab.serve.options import ServeOptions

    root = str(storage / "registry")
    for name, out in trained.items():
        registry.promote(out["checkpoint"], name, root)
    yield start(list(RUNS), ServeOptions(port=free_port(), registry=root, max_texts=4, max_chars=500,
                                         max_batch_size=8, cpus_per_replica=0.25))
    serve.shutdown()


@pytest.mark.parametrize("name", [n for n in RUNS if n != "char-lstm"])
def test_every_classifier_answers_real_http(served, name):
    url = f"{served}/v1/models/{name}"
    labels = requests.get(url, timeout=30).json()["labels"]
    r = requests.post(f"{url}/classify", json={"texts": ["it did not help at all", "works well"]}, timeout=60)
    assert r.status_code == 200, r.text
    assert [p["label"] in labels for p in r.json()["predictions"]] == [True, True]
    r = requests.post(f"{url}/classify", json={"texts": ["x" * 501]}, timeout=30)
    assert r.status_code == 413 and "at most 500" in r.json()["error"]
    r = requests.post(f"{url}/generate", json={"prompt": "a"}, timeout=30)
    assert r.status_code == 404 and f"use POST /v1/models/{name}/classify" in r.json()["error"]


def test_generator_answers_real_http(served):
    url = f"{served}/v1/models/char-lstm"
    info = requests.get(url, timeout=30).json()
    assert info["task"] == "generate" and "Acne" in info["labels"]
    body = {"category": "Acne", "prompt": "My skin", "length": 60, "temperature": 0.5, "n": 2, "seed": 3}
    r = requests.post(f"{url}/generate", json=body, timeout=60)
    assert r.status_code == 200, r.text
    texts = r.json()["texts"]
    assert len(texts) == 2 and all(t.startswith("My skin") and len(t) <= 67 for t in texts)
    assert requests.post(f"{url}/generate", json=body, timeout=60).json()["texts"] == texts  # seeded
    assert requests.post(f"{served}/v1/generate", json=body, timeout=60).json()["texts"] == texts  # the only generator
    bad = [
        ({"category": "Flu"}, 422, "unknown category 'Flu'; this model knows Acne, Birth Control"),
        ({"prompt": "x"}, 422, "this model is conditional: give a category"),
        ({"category": "Acne", "length": 0}, 422, "length: Input should be greater than or equal to 1"),
        ({"category": "Acne", "temperature": 0}, 422, "temperature: Input should be greater than 0"),
        ({"category": "Acne", "n": 99}, 422, "n: Input should be less than or equal to 16"),
        ({"category": "Acne", "length": "long"}, 422, "length: Input should be a valid integer"),
    ]
    for payload, status, message in bad:
        r = requests.post(f"{url}/generate", json=payload, timeout=30)
        assert r.status_code == status and message in r.json()["error"], (payload, r.text)
    r = requests.post(f"{url}/generate", data="{oops", headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 422 and '"category"' in r.json()["error"]
    r = requests.post(f"{url}/classify", json={"texts": ["a"]}, timeout=30)
    assert r.status_code == 404 and "use POST /v1/models/char-lstm/generate" in r.json()["error"]
    assert requests.get(f"{served}/healthz", timeout=30).status_code == 200  # still healthy after bad input
