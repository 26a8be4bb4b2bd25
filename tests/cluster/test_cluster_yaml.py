"""cluster.yaml against the schema Ray ships and Ray's own validator, plus the rules the schema
cannot state (token auth, dashboard on localhost, no secrets, the README's install)."""

import copy
import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster.yaml"
# AWS access key ids, and long hex strings such as a Ray token or a secret key
SECRETS = [re.compile(r"\bA(KIA|SIA)[0-9A-Z]{16}\b"), re.compile(r"\b[0-9a-fA-F]{32,}\b"),
           re.compile(r"(AWS_SECRET_ACCESS_KEY|RAY_AUTH_TOKEN)\s*[=:]")]


def ray_schema() -> dict:
    # found on disk: importing ray's autoscaler modules is not needed to read the schema
    ray_dir = Path(importlib.util.find_spec("ray").submodule_search_locations[0])
    return json.loads((ray_dir / "autoscaler" / "ray-schema.json").read_text())


def problems(text: str) -> list[str]:
    """What is wrong with a cluster config's text: schema errors first, then the project's rules."""
    found = [f"secret-like string {m.group(0)[:8]}..." for p in SECRETS for m in p.finditer(text)]
    cfg = yaml.safe_load(text)
    validator = jsonschema.Draft7Validator(ray_schema())
    schema_errors = [f"{'/'.join(map(str, e.absolute_path)) or 'top level'}: {e.message}"
                     for e in validator.iter_errors(cfg)]
    if schema_errors:
        return found + schema_errors

    types, head = cfg.get("available_node_types", {}), cfg.get("head_node_type")
    if head not in types:
        return found + [f"head_node_type {head!r} is not in available_node_types"]
    workers = {name: t for name, t in types.items() if name != head}
    if not workers:
        found.append("no worker node type")
    for name, t in workers.items():
        if t.get("min_workers", 0) > t.get("max_workers", cfg.get("max_workers", 2)):
            found.append(f"{name}: min_workers > max_workers")
    if sum(t.get("min_workers", 0) for t in workers.values()) > cfg.get("max_workers", 2):
        found.append("sum of min_workers exceeds max_workers")
    if not any(t["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot" for t in workers.values()):
        found.append("no spot worker type")

    head_start = " ".join(cfg.get("head_start_ray_commands", []))
    worker_start = " ".join(cfg.get("worker_start_ray_commands", []))
    for role, cmds in (("head", head_start), ("worker", worker_start)):
        if not re.search(r"RAY_AUTH_MODE=token\s.*\bray start\b", cmds):
            found.append(f"{role} start commands lack RAY_AUTH_MODE=token before ray start")
    if "--dashboard-host=127.0.0.1" not in head_start or "0.0.0.0" in head_start:
        found.append("head dashboard must listen on 127.0.0.1 only")
    if cfg.get("file_mounts", {}).get("~/.ray/auth_token") != "~/.ray/auth_token":
        found.append("file_mounts must copy ~/.ray/auth_token to the nodes")
    installs = [c for c in cfg.get("setup_commands", []) if "make install" in c]
    if not installs:
        found.append("setup_commands lack the README's make install")
    elif not all(re.search(r"\bEXTRAS=(\s|$)", c) for c in installs):
        found.append("setup_commands install the test extras on the nodes (make install EXTRAS= installs the runtime)")
    if not {".venv", ".git"} <= set(cfg.get("rsync_exclude", [])):
        found.append("rsync_exclude must keep .venv and .git off the nodes")
    return found


def test_cluster_yaml_is_valid():
    assert problems(CLUSTER.read_text()) == []


def test_ray_validate_config_accepts_it_and_adds_no_setup_commands():
    # `ray up`'s own offline steps: merge with the AWS defaults, then validate (no AWS calls)
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = yaml.safe_load(CLUSTER.read_text())
    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    # the defaults would add `pip install boto3` outside the venv to the head's setup
    assert prepared["head_setup_commands"] == prepared["worker_setup_commands"] == cfg["setup_commands"]


def _edit(change):
    cfg = yaml.safe_load(CLUSTER.read_text())
    change(cfg)
    return cfg


BROKEN = {
    "max_workers not a number": (lambda c: c.update(max_workers="eight"), "max_workers: 'eight' is not of type"),
    "unknown top-level key": (lambda c: c.update(max_worker=8), "Additional properties are not allowed"),
    "head type missing": (lambda c: c.update(head_node_type="cpu_head"), "head_node_type 'cpu_head' is not in"),
    "min above max": (lambda c: c["available_node_types"]["gpu_worker"].update(min_workers=3, max_workers=1),
                      "gpu_worker: min_workers > max_workers"),
    "worker without token auth": (lambda c: c.update(worker_start_ray_commands=["ray start --address=$RAY_HEAD_IP"]),
                                  "worker start commands lack RAY_AUTH_MODE=token"),
    "public dashboard": (lambda c: c["head_start_ray_commands"].append("ray start --head --dashboard-host=0.0.0.0"),
                         "head dashboard must listen on 127.0.0.1 only"),
    "token in the file": (lambda c: c["setup_commands"].append("echo " + "3f" * 16 + " > ~/.ray/auth_token"),
                          "secret-like string"),
    "access key in the file": (lambda c: c["setup_commands"].append("export KEY=AKIA" + "Q" * 16),
                               "secret-like string AKIAQQQQ"),
    "no make install": (lambda c: c.update(setup_commands=["pip install ray"]), "setup_commands lack"),
    "test extras on the nodes": (lambda c: c.update(setup_commands=["cd ~/seqlab && make install"]),
                                 "setup_commands install the test extras"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_copy_is_rejected(name):
    change, expected = BROKEN[name]
    found = problems(yaml.safe_dump(_edit(change)))
    assert any(expected in p for p in found), found


@pytest.mark.parametrize("name", ["max_workers not a number", "unknown top-level key", "head type missing"])
def test_ray_validator_rejects_the_same_breakage(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_config(prepare_config(_edit(BROKEN[name][0])))
