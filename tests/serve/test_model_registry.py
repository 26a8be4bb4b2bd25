"""The model registry: promotion picks the best trial by its metric, versions count up, every file is
checked against the card's checksums, and bad references get a clear message (no Ray)."""

import hashlib
import json

import pytest
from conftest import tiny_checkpoint

from seqlab import registry
from seqlab.cli import main, run
from seqlab.errors import SeqlabError


@pytest.fixture
def search(tmp_path):
    """A finished search's results folder: three trials, the best by F1 is not the best by loss."""
    rows = [("h8", 0.61, 0.90), ("h16", 0.72, 0.95), ("h32", 0.55, 0.80)]
    out = tmp_path / "results" / "tiny-lstm"
    out.mkdir(parents=True)
    lines = ["trial,hidden,val_macro_f1,val_loss,checkpoint,status"]
    for i, (trial, f1, loss) in enumerate(rows):
        ckpt = tiny_checkpoint(tmp_path / "runs" / trial / "epoch_003", metrics={"val_macro_f1": f1, "val_loss": loss},
                               seed=i)
        lines.append(f"{trial},{trial[1:]},{f1},{loss},{ckpt},ok")
    lines.append("h64,64,0.99,0.1,,error")  # a failed trial is never promoted
    (out / "search.csv").write_text("\n".join(lines) + "\n")
    (out / "best.json").write_text(json.dumps({"metric": "val_macro_f1", "trial": "h16", "search": "tiny",
                                               "checkpoint": str(tmp_path / "runs/h16/epoch_003"),
                                               "val_macro_f1": 0.72, "commit": "abc123"}))
    return out


def test_promote_picks_the_best_trial_and_counts_versions(search, tmp_path):
    root = str(tmp_path / "registry")
    card = registry.promote(str(search), "cfpb", root)
    assert (card["name"], card["version"], card["task"]) == ("cfpb", 1, "classify")
    assert card["promotion"]["trial"] == "h16" and card["promotion"]["trials_compared"] == 3
    assert card["metrics"]["val_macro_f1"] == 0.72 and card["promotion"]["search_commit"] == "abc123"
    assert set(card["files"]) == {"model.safetensors", "seqlab_tokenizer.json", "meta.json"}
    assert card["data"]["name"] == "tiny" and card["commit"]

    by_loss = registry.promote(str(search / "best.json"), "cfpb", root, metric="val_loss")
    assert by_loss["version"] == 2 and by_loss["promotion"]["trial"] == "h32"
    assert by_loss["promotion"]["mode"] == "min"  # losses are minimised
    assert registry.versions(root, "cfpb") == [1, 2]
    assert registry.card(root, "cfpb")["version"] == 2 and registry.card(root, "cfpb:1")["version"] == 1

    rows = registry.listing(root)
    assert [(r["name"], r["version"], r["versions"]) for r in rows] == [("cfpb", 2, 2)]


def test_loading_checks_every_file(search, tmp_path):
    from seqlab.serve.sources import open_source

    root = str(tmp_path / "registry")
    registry.promote(str(search), "cfpb", root)
    with open_source({"registry": root, "ref": "cfpb"}) as (d, card):
        assert card["version"] == 1
        assert not (d / "optimizer.pt").exists()  # never copied: nothing in a registry is unpickled
        from seqlab.tasks import load_predictor

        assert load_predictor(d).predict(["my card"])[0]["label"] in ("billing", "loans", "other")
    weights = tmp_path / "registry" / "cfpb" / "v0001" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # same size, other bytes
    with pytest.raises(SeqlabError, match="model cfpb:1 is corrupt: model.safetensors does not match"):
        with open_source({"registry": root, "ref": "cfpb"}):
            pass


def test_a_checkpoint_written_before_keeps_loading_and_promoting(tmp_path):
    """Checkpoints made before seqlab_tokenizer.json hold their tokenizer as tokenizer.json, with
    no "scheme" (ASCII words): they load, answer as before, and promote."""
    from seqlab.checkpoint import load_model
    from seqlab.serve.sources import open_source
    from seqlab.storage import sha256_of
    from seqlab.tasks import load_predictor

    ckpt = tiny_checkpoint(tmp_path / "old")
    tok = json.loads((ckpt / "seqlab_tokenizer.json").read_text())
    del tok["scheme"]
    (ckpt / "seqlab_tokenizer.json").unlink()
    (ckpt / "tokenizer.json").write_text(json.dumps(tok))
    meta = json.loads((ckpt / "meta.json").read_text())
    meta["files"] = {f.name: sha256_of(f) for f in sorted(ckpt.iterdir()) if f.name != "meta.json"}
    (ckpt / "meta.json").write_text(json.dumps(meta))

    assert load_model(ckpt)[1].scheme == "ascii"
    card = registry.promote(str(ckpt), "old", str(tmp_path / "registry"))
    assert set(card["files"]) == {"model.safetensors", "tokenizer.json", "meta.json"}
    with open_source({"registry": str(tmp_path / "registry"), "ref": "old"}) as (d, _):
        assert load_predictor(d).predict(["my card"]) == load_predictor(ckpt).predict(["my card"])


def test_a_version_cut_short_is_not_listed(search, tmp_path):
    root = tmp_path / "registry"
    registry.promote(str(search), "cfpb", str(root))
    (root / "cfpb" / "v0002").mkdir()  # an upload that never wrote its card
    (root / "cfpb" / "v0002" / "model.safetensors").write_bytes(b"partial")
    assert registry.versions(str(root), "cfpb") == [1]
    assert registry.promote(str(search), "cfpb", str(root))["version"] == 2  # the next complete one


@pytest.mark.parametrize("ref, message", [
    ("nope", "no model 'nope' in registry .*; it has: cfpb"),
    ("cfpb:7", "model 'cfpb' has no version 7 .*; it has 1"),
    ("Bad Name", "model name 'Bad Name' is not valid"),
    ("cfpb:x", "model version 'x' in 'cfpb:x' is not a number"),
])
def test_bad_references_name_what_exists(search, tmp_path, ref, message):
    root = str(tmp_path / "registry")
    registry.promote(str(search), "cfpb", root)
    with pytest.raises(SeqlabError, match=message):
        registry.card(root, ref)


def test_promote_refuses_what_it_cannot_use(search, tmp_path):
    root = str(tmp_path / "registry")
    with pytest.raises(SeqlabError, match="neither a checkpoint .* nor a finished search"):
        registry.promote(str(tmp_path), "x", root)
    with pytest.raises(SeqlabError, match="has no metric 'val_bleu'; its trials have val_macro_f1, val_loss"):
        registry.promote(str(search), "x", root, metric="val_bleu")
    with pytest.raises(SeqlabError, match="without a version"):
        registry.promote(str(search), "x:3", root)
    ckpt = tmp_path / "runs" / "h8" / "epoch_003"
    (ckpt / "seqlab_tokenizer.json").write_text("{}")  # changed after its checksum was taken
    with pytest.raises(SeqlabError, match="half-written"):
        registry.promote(str(ckpt), "x", root)
    assert registry.names(root) == []  # nothing half-promoted


def test_registry_cli(search, tmp_path, capsys):
    root = str(tmp_path / "registry")
    out = run(["registry", "promote", str(search), "--name", "cfpb", "--registry", root])
    assert out["card"]["version"] == 1
    assert "promoted trial h16 (val_macro_f1 0.7200, best of 3) as cfpb:1" in capsys.readouterr().out
    run(["registry", "list", "--registry", root])
    line = capsys.readouterr().out
    assert "cfpb" in line and "v1" in line and "val_macro_f1 0.7200" in line
    shown = run(["registry", "show", "cfpb:1", "--registry", root])["card"]
    assert shown["files"]["meta.json"] == out["card"]["files"]["meta.json"]
    with pytest.raises(SystemExit) as err:
        main(["registry", "show", "missing", "--registry", root])
    assert err.value.code == 2
    assert capsys.readouterr().err.strip() == f"seqlab: error: no model 'missing' in registry {root}; it has: cfpb"


def test_serve_config_is_a_valid_serve_file(search, tmp_path):
    import yaml
    from ray.serve.schema import ServeDeploySchema

    root = str(tmp_path / "registry")
    registry.promote(str(search), "cfpb", root)
    registry.promote(str(search), "other", root, metric="val_loss")
    path = tmp_path / "serve.yaml"
    keys = tmp_path / "keys"
    keys.write_text("key-one\n# a comment\nkey-two\n")
    run(["registry", "serve-config", "--models", "cfpb,other:1", "--registry", root, "--max-replicas", "4",
         "--max-batch-size", "16", "--api-keys-file", str(keys), "--no-access-log", "-o", str(path)])
    config = yaml.safe_load(path.read_text())
    ServeDeploySchema.model_validate(config)
    app = config["applications"][0]
    assert app["import_path"] == "seqlab.serve.app:build_app" and app["args"]["models"] == ["cfpb", "other:1"]
    assert app["args"]["max_batch_size"] == 16 and app["args"]["access_log"] is False
    assert app["args"]["versions"] == {"cfpb": 1, "other:1": 1}  # pinned now: a later promote makes a new config
    # the keys' digests travel in the file (no key file needs to exist on the cluster), never the keys
    assert "api_keys_file" not in app["args"] and "key-one" not in path.read_text()
    assert app["args"]["api_key_digests"] == sorted(hashlib.sha256(k).hexdigest() for k in (b"key-one", b"key-two"))
    assert "runtime_env" not in app  # a local registry: the config is for this machine's code
    names = {d["name"]: d for d in app["deployments"]}
    assert set(names) == {"Gateway", "model-cfpb", "model-other-v1"}
    assert names["model-cfpb"]["autoscaling_config"]["max_replicas"] == 4
    assert names["model-cfpb"]["max_ongoing_requests"] >= 2 * 16  # room for batches to fill
    # resources are the application's (a GPU per replica where the cluster has GPUs) unless given
    assert "ray_actor_options" not in names["model-cfpb"]
    run(["registry", "serve-config", "--models", "cfpb", "--registry", root, "--gpus-per-replica", "0.5",
         "-o", str(path)])
    given = yaml.safe_load(path.read_text())["applications"][0]["deployments"][1]
    assert given["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.5}
    with pytest.raises(SeqlabError, match="no model 'gone'"):
        run(["registry", "serve-config", "--models", "cfpb,gone", "--registry", root])


def test_registry_on_s3(search, tmp_path, monkeypatch):
    from seqlab_tools.cluster import S3Server

    with S3Server(tmp_path / "s3") as s3:
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        from seqlab import storage

        storage.ensure_bucket("s3://models/registry")
        card = registry.promote(str(search), "cfpb", "s3://models/registry")
        assert card["version"] == 1 and registry.versions("s3://models/registry", "cfpb") == [1]
        from seqlab.serve.sources import open_source

        with open_source({"registry": "s3://models/registry", "ref": "cfpb:1"}) as (d, c):
            assert (d / "model.safetensors").exists() and c["files"] == card["files"]
        # a Serve config for an S3 registry carries the code as a remote py_module beside it
        import io
        import zipfile

        import yaml

        uris = []
        for _ in range(2):
            run(["registry", "serve-config", "--models", "cfpb", "--registry", "s3://models/registry",
                 "-o", str(tmp_path / "s.yaml")])
            uris += yaml.safe_load((tmp_path / "s.yaml").read_text())["applications"][0]["runtime_env"]["py_modules"]
        assert uris[0] == uris[1] and uris[0].startswith("s3://models/registry/_code/seqlab-")  # named by content
        names = zipfile.ZipFile(io.BytesIO(storage.read_bytes(uris[0]))).namelist()
        [top] = {n.split("/")[0] for n in names}  # one folder, which Ray strips
        assert f"{top}/seqlab/serve/app.py" in names and not any("__pycache__" in n for n in names)
        assert registry.names("s3://models/registry") == ["cfpb"]  # the code is no model
