import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqlab.cli import build_parser, parse
from seqlab.config import SECTIONS
from seqlab.errors import SeqlabError

ROOT = Path(__file__).resolve().parents[1]


def seqlab(*args, **kw):
    return subprocess.run([sys.executable, "-m", "seqlab.cli", *args], capture_output=True, text=True, **kw)


@pytest.mark.parametrize("command", ["data", "train", "tune", "serve", "predict", "demo"])
def test_help_explains_every_command(command):
    out = seqlab(command, "--help")
    assert out.returncode == 0 and "usage: seqlab " + command in out.stdout
    if command in ("train", "tune", "demo"):
        assert "--hidden" in out.stdout and "LSTM width" in out.stdout and "resumes" in seqlab("--help").stdout


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    for args, expected in [
        (["train", "--dropout", "1.5"], "dropout must be in [0, 1), got 1.5"),
        (["train", "--pooling", "avg"], "pooling must be 'max' or 'last', got 'avg'"),
        (["data", "--dataset", str(tmp_path / "none.csv"), "--text-column", "a", "--label-column", "b"],
         "does not exist"),
        (["predict", "--checkpoint", str(tmp_path), "hello"], "not a seqlab checkpoint"),
        (["train", "--config", str(tmp_path / "missing.yaml")], "does not exist"),
    ]:
        out = seqlab(*args)
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines[-1].startswith("seqlab: error:") and expected in lines[-1], out.stderr


def test_precedence_defaults_yaml_flags(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"hidden": 77, "dropout": 0.1}, "train": {"epochs": 3}}))
    _, c = parse(["train", "--config", str(cfg), "--hidden", "99"])
    assert c["model"].hidden == 99 and c["model"].dropout == 0.1 and c["train"].epochs == 3
    assert c["train"].lr == SECTIONS["train"]().lr
    cfg.write_text(yaml.safe_dump({"serving": {}}))
    with pytest.raises(SeqlabError, match="unknown section 'serving'"):
        parse(["train", "--config", str(cfg)])


def test_demo_presets_and_full():
    _, small = parse(["demo"])
    _, full = parse(["demo", "--full"])
    _, override = parse(["demo", "--epochs", "5"])
    assert small["data"].max_len < full["data"].max_len and small["train"].epochs < full["train"].epochs
    assert full["data"].limit is None and full["search"].hidden_max == 512
    assert override["train"].epochs == 5
    assert small["search"].results_dir == "results/demo"  # never over the committed full-size figures


def test_every_yaml_config_in_the_repo_loads():
    files = sorted((ROOT / "configs").glob("*.yaml"))
    assert files, "configs/ holds the shipped YAML configs"
    for f in files:
        _, c = parse(["tune", "--config", str(f)])
        assert c["train"].epochs >= 1, f


def test_parser_builds():
    assert "demo" in build_parser().format_help()


@pytest.mark.parametrize("job,command", [("train", "train"), ("tune", "tune"), ("serve", "serve"),
                                         ("pipeline", "demo")])
def test_job_scripts_are_the_cli(job, command):
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / f"{job}.py"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and f"usage: seqlab {command}" in out.stdout
