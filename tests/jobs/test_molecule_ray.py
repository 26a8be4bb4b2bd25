"""Real Ray: the SMILES VAE trains through the train job (2 workers) with per-epoch RDKit metrics,
its width and dropout are searched on the chemistry objective, and it serves ``/v1/molecules/*``
over HTTP with 4xx answers naming RDKit's reason or the expected shape."""

import gzip
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import requests
from conftest import free_port

from seqlab import chem
from seqlab.cli import run
from seqlab.tasks.molecule import MoleculeGenerator

pytestmark = pytest.mark.ray

SMALL = ["--max-len", "60", "--embed-dim", "16", "--hidden", "32", "--latent", "8", "--sample-molecules", "50"]


@pytest.fixture(scope="module")
def smiles_file(tmp_path_factory):
    """600 MOSES test molecules as a user's .smi file (a name after each SMILES), plus one invalid line."""
    from seqlab.data.artifacts import MOSES_ARTIFACT, fetch_artifact

    with zipfile.ZipFile(fetch_artifact(MOSES_ARTIFACT)) as zf:
        raw = zf.read("moses/dataset/data/test.csv.gz")
    smiles = pd.read_csv(io.BytesIO(gzip.decompress(raw)))["SMILES"].head(600).tolist()
    path = tmp_path_factory.mktemp("smi") / "leads.smi"
    path.write_text("\n".join(f"{s} mol{i}" for i, s in enumerate(smiles)) + "\nC1CC broken\n")
    return path


@pytest.fixture(scope="module")
def trained(ray_local, smiles_file, tmp_path_factory):
    storage = tmp_path_factory.mktemp("molecule-runs")
    out = run(["train", "--dataset", str(smiles_file), "--model", "smiles-vae", *SMALL, "--epochs", "2",
               "--num-workers", "2", "--batch-size", "32", "--name", "leads-vae", "--storage-path", str(storage)])
    return out, storage


def test_vae_trains_with_two_workers_and_reports_chemistry_each_epoch(trained):
    out, storage = trained
    meta = json.loads((Path(out["checkpoint"]) / "meta.json").read_text())
    assert meta["task"] == "molecule" and meta["model"]["kwargs"]["max_len"] == 60
    assert meta["data"]["counts"]["train"] + meta["data"]["counts"]["validation"] + meta["data"]["counts"]["test"] == 600
    card = json.loads((Path(meta["data"]["root"]) / "card.json").read_text())
    assert card["invalid"]["count"] == 1 and "unclosed ring" in card["invalid"]["examples"][0]["reason"]
    metrics = out["metrics"]
    for key in ("val_loss", "val_recon", "val_kl", "val_valid", "val_unique", "val_novelty", "val_chem_score"):
        assert key in metrics, key
    assert 0 <= metrics["val_valid"] <= 1
    assert metrics["val_chem_score"] == pytest.approx(metrics["val_valid"] * metrics["val_unique"]
                                                      * metrics["val_novelty"])
    assert metrics["val_loss"] == pytest.approx(metrics["val_recon"] + metrics["val_kl"], rel=1e-6)
    test = out["test"]
    assert {"loss", "recon", "kl", "token_accuracy", "reconstruction", "valid", "unique"} <= set(test)


def test_search_optimises_the_chemistry_score(ray_local, trained, smiles_file, tmp_path):
    _, storage = trained
    out = run(["tune", "--dataset", str(smiles_file), "--model", "smiles-vae", *SMALL[:-6], "--latent", "8",
               "--sample-molecules", "50", "--objective", "chem", "--epochs", "2", "--num-samples", "2",
               "--hidden-min", "16", "--hidden-max", "48", "--num-workers", "1", "--search-name", "search-vae",
               "--storage-path", str(storage), "--results-dir", str(tmp_path)])
    table = pd.read_csv(out["out_dir"] / "search.csv")
    assert len(table) == 2 and set(table["status"]) == {"ok"} and table["hidden"].between(16, 48).all()
    assert "val_chem_score" in table and table["val_chem_score"].between(0, 1).all()
    assert json.loads((out["out_dir"] / "best.json").read_text())["metric"] == "val_chem_score"


def test_molecules_answer_real_http(trained):
    from ray import serve

    from seqlab.serve.app import start
    from seqlab.serve.options import ServeOptions

    url = start(trained[0]["checkpoint"], ServeOptions(port=free_port(), max_texts=8, max_chars=200, max_batch_size=8))
    try:
        latent = MoleculeGenerator(trained[0]["checkpoint"]).latent_size
        r = requests.post(f"{url}/v1/molecules/sample", json={"n": 5, "seed": 1, "svg": True}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["molecules"]) == 5 and body["valid_fraction"] == sum(m["valid"] for m in body["molecules"]) / 5
        assert all(("svg" in m) == m["valid"] for m in body["molecules"])
        again = requests.post(f"{url}/v1/molecules/sample", json={"n": 5, "seed": 1, "svg": True}, timeout=60).json()
        assert again["molecules"] == body["molecules"]

        r = requests.post(f"{url}/v1/molecules/encode", json={"smiles": ["OCC", "c1ccccc1O"]}, timeout=60)
        assert r.status_code == 200, r.text
        enc = r.json()
        assert enc["canonical"] == ["CCO", "Oc1ccccc1"] and enc["latent_size"] == latent
        assert [len(z) for z in enc["latents"]] == [latent, latent]
        r = requests.post(f"{url}/v1/molecules/decode", json={"latents": enc["latents"]}, timeout=60)
        assert r.status_code == 200 and len(r.json()["molecules"]) == 2
        r = requests.post(f"{url}/v1/molecules/neighbours", json={"smiles": "CC(=O)Oc1ccccc1C(=O)O", "n": 20,
                                                                   "radius": 1.0}, timeout=60)
        assert r.status_code == 200, r.text
        for m in r.json()["neighbours"]:
            assert chem.canonical(m["smiles"]) == m["smiles"] and 0 <= m["similarity"] <= 1
        r = requests.get(f"{url}/v1/molecules/svg", params={"smiles": "c1ccccc1O"}, timeout=60)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml") and "<svg" in r.text

        bad = [
            ("post", "/v1/molecules/encode", {"smiles": ["C1CC"]}, 422, "smiles[0] 'C1CC' is not a valid molecule"),
            ("post", "/v1/molecules/encode", {"smiles": ["C(C)(C)(C)(C)C"]}, 422, "valence"),
            ("post", "/v1/molecules/encode", {"smiles": []}, 422, "smiles is empty"),
            ("post", "/v1/molecules/encode", {"smiles": ["C"] * 9}, 413, "at most 8"),
            ("post", "/v1/molecules/decode", {"latents": [[0.0] * (latent + 1)]}, 422,
             f"latents[0] has {latent + 1} values; this model's latent vectors have {latent}"),
            ("post", "/v1/molecules/decode", {"latents": []}, 422, "latents is empty"),
            ("post", "/v1/molecules/sample", {"n": 0}, 422, "n:"),
            ("post", "/v1/molecules/sample", {"n": 5000}, 422, "n:"),
            ("post", "/v1/molecules/sample", {"n": "many"}, 422, "n:"),
            ("post", "/v1/molecules/neighbours", {"smiles": "not a molecule"}, 422, "is not a valid molecule"),
            ("post", "/v1/molecules/neighbours", {"smiles": "CCO", "radius": -1}, 422, "radius"),
            ("get", "/v1/molecules/svg", {"smiles": "C1CC"}, 422, "not a valid molecule"),
            ("get", "/v1/molecules/svg", {}, 422, "query parameter 'smiles': Field required; expected ?smiles="),
            ("get", "/v1/molecules/svg", {"smiles": "CCO", "width": 5}, 422, "within 50..2000 pixels"),
            ("post", "/v1/classify", {"texts": ["CCO"]}, 404, "use POST /v1/molecules/sample"),
        ]
        for method, route, body, status, needle in bad:
            kw = {"params": body} if method == "get" else {"json": body}
            r = getattr(requests, method)(f"{url}{route}", timeout=60, **kw)
            assert r.status_code == status, (route, body, r.status_code, r.text)
            assert needle in r.json()["error"], (route, r.json())
        r = requests.post(f"{url}/v1/molecules/sample", data=b"{not json", timeout=60,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
        assert requests.get(f"{url}/healthz", timeout=30).json()["task"] == "molecule"
    finally:
        serve.shutdown()  # frees the replica's CPU for the tests after this one
