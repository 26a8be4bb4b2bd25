import json

import pytest

from seqlab.errors import BadInput, SeqlabError
from seqlab.serve.sources import resolve_checkpoint
from seqlab.tasks.classify import check_texts


@pytest.mark.parametrize("texts,status,message", [
    ([], 422, "texts is empty"),
    (["ok", "  "], 422, "texts[1] is empty"),
    (["x" * 11], 413, "texts[0] has 11 characters; at most 10"),
    (["a"] * 4, 413, "4 texts in one request; at most 3"),
])
def test_check_texts(texts, status, message):
    with pytest.raises(BadInput) as err:
        check_texts(texts, max_texts=3, max_chars=10)
    assert err.value.status == status and message in err.value.message


def test_check_texts_accepts_good_input():
    check_texts(["fine", "also fine"], max_texts=3, max_chars=10)


def test_resolve_checkpoint(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"checkpoint": "/runs/x/epoch_003"}))
    assert resolve_checkpoint(str(tmp_path)) == "/runs/x/epoch_003"
    assert resolve_checkpoint(str(tmp_path / "best.json")) == "/runs/x/epoch_003"
    assert resolve_checkpoint("/some/checkpoint") == "/some/checkpoint"
    with pytest.raises(SeqlabError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "other.json"))


@pytest.mark.parametrize("smiles,status,message", [
    ([], 422, "smiles is empty"),
    (["CCO", "C1CC"], 422, "smiles[1] 'C1CC' is not a valid molecule: SMILES Parse Error: unclosed ring"),
    (["C(C)(C)(C)(C)C"], 422, "Explicit valence for atom # 0 C, 5, is greater than permitted"),
    ([""], 422, "smiles[0] '' is not a valid molecule: empty SMILES"),
    (["C" * 11], 413, "smiles[0] has 11 characters; at most 10"),
    (["C"] * 4, 413, "4 molecules in one request; at most 3"),
])
def test_check_smiles_names_rdkit_reason(smiles, status, message):
    from seqlab.tasks.molecule import check_smiles

    with pytest.raises(BadInput) as err:
        check_smiles(smiles, max_items=3, max_chars=10 if status == 413 else 100)
    assert err.value.status == status and message in err.value.message, err.value.message


def test_check_smiles_gives_canonical_forms():
    from seqlab.tasks.molecule import check_smiles, molecules

    assert check_smiles(["OCC", "c1ccccc1O"], max_items=3, max_chars=20) == ["CCO", "Oc1ccccc1"]
    out = molecules(["CCO", "C1CC", ""], svg=True)
    got = out["molecules"]
    assert [m["valid"] for m in got] == [True, False, False] and out["valid_fraction"] == 1 / 3
    assert got[0]["svg"].lstrip().startswith("<?xml") and "svg" not in got[1]


def test_a_replica_uses_a_gpu_only_when_ray_gave_it_one():
    from seqlab.serve.server import replica_device

    assert replica_device(["0"], cuda_available=True) == "cuda"
    assert replica_device([], cuda_available=True) == "cpu"  # asked for none: stays off the node's GPUs
    assert replica_device(["0"], cuda_available=False) == "cpu"


def _guarded():
    """The gateway's Guard around a small app; its settings come from the (patched) replica context."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from seqlab.serve import guard

    app = Starlette(routes=[Route("/v1/classify", lambda r: PlainTextResponse("ok"), methods=["POST"]),
                            Route("/healthz", lambda r: PlainTextResponse("ok"))])
    app.add_middleware(guard.Guard)
    return TestClient(app)


@pytest.mark.parametrize("broken", [
    lambda: (_ for _ in ()).throw(RuntimeError("no replica context")),
    lambda: type("Gateway", (), {})(),  # a gateway without settings
    lambda: type("Gateway", (), {"guard": {"max_body_bytes": 10, "key_digests": frozenset({"not-a-digest"})}})(),
])
def test_the_guard_fails_closed_when_its_settings_cannot_be_read(monkeypatch, broken):
    from seqlab.serve import guard

    class Context:
        @property
        def servable_object(self):
            return broken()

    monkeypatch.setattr(guard.serve, "get_replica_context", lambda: Context())
    client = _guarded()
    r = client.post("/v1/classify", json={"texts": ["a"]}, headers={"X-API-Key": "anything"})
    assert r.status_code == 503 and "could not read its API key settings" in r.json()["error"]
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_the_guard_checks_keys_against_the_digests(monkeypatch):
    import hashlib

    from seqlab.serve import guard

    gateway = type("Gateway", (), {"guard": {"max_body_bytes": 1000,
                                             "key_digests": frozenset({hashlib.sha256(b"k1").hexdigest()})}})()
    monkeypatch.setattr(guard.serve, "get_replica_context", lambda: type("C", (), {"servable_object": gateway})())
    client = _guarded()
    assert client.post("/v1/classify", json={}).status_code == 401
    assert client.post("/v1/classify", json={}, headers={"X-API-Key": "k2"}).status_code == 403
    assert client.post("/v1/classify", json={}, headers={"X-API-Key": "k1"}).status_code == 200
    assert client.post("/v1/classify", content=b"x" * 1001, headers={"X-API-Key": "k1"}).status_code == 413


def test_build_app_refuses_digests_that_are_not_digests(tmp_path):
    from seqlab.serve.app import key_digests
    from seqlab.serve.options import ServeOptions

    with pytest.raises(SeqlabError, match="is not a sha256 hex digest"):
        key_digests({"api_key_digests": ["secret-key-in-clear"]}, ServeOptions())
    (tmp_path / "keys").write_text("one\n")
    assert key_digests({}, ServeOptions(api_keys_file=str(tmp_path / "keys"))) == {
        "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"}
