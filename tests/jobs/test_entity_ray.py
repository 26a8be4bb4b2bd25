"""Real Ray: LSTM+CA trains through the train job (2 workers), searches width and dropout, and serves
``POST /v1/entities/classify`` over HTTP with clear 4xx answers for bad spans."""

import json
from pathlib import Path

import pandas as pd
import pytest
import requests
from conftest import free_port

from seqlab.cli import run
from seqlab.tasks.entity import EntityClassifier

pytestmark = pytest.mark.ray

FLAGS = ["--dataset", "bionlp-triggers", "--fold", "1", "--max-len", "48", "--min-freq", "1", "--embed-dim", "16",
         "--hidden", "16"]


@pytest.fixture(scope="module")
def trained(ray_local, tmp_path_factory):
    storage = tmp_path_factory.mktemp("entity-runs")
    out = run(["train", "--model", "lstm-ca-feat", *FLAGS, "--epochs", "2", "--num-workers", "2", "--batch-size",
               "32", "--name", "triggers-lstm-ca-feat", "--storage-path", str(storage)])
    return out, storage


def test_lstm_ca_feat_trains_with_two_workers_on_a_fold(trained):
    out, _ = trained
    meta = json.loads((Path(out["checkpoint"]) / "meta.json").read_text())
    assert meta["task"] == "entity" and meta["model"]["name"] == "lstm-ca-feat" and meta["data"]["fold"] == 1
    assert len(meta["data"]["features"]["mean"]) == len(meta["data"]["features"]["names"])
    test = out["test"]
    assert 0 <= test["macro_f1"] <= 1 and {"macro_precision", "macro_recall", "per_class"} <= set(test)
    clf = EntityClassifier(out["checkpoint"])
    text = "IL-2 expression was strongly induced by PMA in Jurkat cells."
    res = clf.predict(pd.DataFrame([{"text": text, "start": text.index("induced"), "end": text.index(" by")}]))[0]
    assert res["label"] in meta["labels"] and abs(sum(res["probabilities"].values()) - 1) < 1e-3
    assert [a["token"] for a in res["attention"] if a["mention"]] == ["induced"]
    assert abs(sum(a["weight"] for a in res["attention"]) - 1) < 1e-2


def test_width_dropout_search_runs_for_lstm_ca(ray_local, trained, tmp_path):
    _, storage = trained
    out = run(["tune", "--model", "lstm-ca", *FLAGS[:-4], "--epochs", "1", "--num-samples", "2", "--hidden-min", "8",
               "--hidden-max", "24", "--num-workers", "1", "--search-name", "search-lstm-ca", "--storage-path",
               str(storage), "--results-dir", str(tmp_path)])
    table = pd.read_csv(out["out_dir"] / "search.csv")
    assert len(table) == 2 and set(table["status"]) == {"ok"} and table["hidden"].between(8, 24).all()
    assert json.loads((out["out_dir"] / "best.json").read_text())["metric"] == "val_macro_f1"


def test_entities_answer_real_http(trained):
    from ray import serve

    from seqlab.serve.app import start
    from seqlab.serve.options import ServeOptions

    url = start(trained[0]["checkpoint"], ServeOptions(port=free_port(), max_texts=4, max_chars=300, max_batch_size=8))
    try:
        text = "Stat3 is phosphorylated by JAK2. This binding activates transcription of IL-10."
        spans = [{"start": text.index("phosphorylated"), "end": text.index(" by")},
                 {"start": text.index("activates"), "end": text.index(" transcription")}]
        r = requests.post(f"{url}/v1/entities/classify", json={"text": text, "spans": spans}, timeout=60)
        assert r.status_code == 200, r.text
        got = r.json()["entities"]
        assert [e["mention"] for e in got] == ["phosphorylated", "activates"]
        assert got[1]["sentence"] == "This binding activates transcription of IL-10."
        assert got[0]["attention"][0]["token"] == "stat3" and "probabilities" in got[0]
        bad = [
            ({"text": text, "spans": [{"start": 5, "end": 500}]}, 422,
             f"spans[0] is out of range (start 5, end 500); expected 0 <= start < end <= {len(text)}"),
            ({"text": text, "spans": [{"start": 3, "end": 3}]}, 422, "spans[0] is empty (start == end)"),
            ({"text": text, "spans": [{"start": 5, "end": 6}]}, 422, "spans[0] (5-6) covers only white space"),
            ({"text": text, "spans": []}, 422, "spans is empty"),
            ({"text": text}, 422, "missing field 'spans'"),
            ({"text": text, "spans": [{"start": "a", "end": 2}]}, 422, "spans[0].start: Input should be a valid"),
            ({"text": "x" * 301, "spans": [{"start": 0, "end": 1}]}, 413, "at most 300 are allowed"),
            ({"text": text, "spans": [{"start": 0, "end": 1}] * 5}, 413, "5 spans in one request; at most 4"),
        ]
        for payload, status, message in bad:
            r = requests.post(f"{url}/v1/entities/classify", json=payload, timeout=30)
            assert r.status_code == status and message in r.json()["error"], (payload, r.text)
        r = requests.post(f"{url}/v1/classify", json={"texts": ["a"]}, timeout=30)
        assert r.status_code == 404 and "use POST /v1/entities/classify" in r.json()["error"]
        assert requests.get(f"{url}/healthz", timeout=30).json()["task"] == "entity"
    finally:
        serve.shutdown()
