import importlib.util
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from seqlab.cli import build_parser, parse
from seqlab.config import SECTIONS
from seqlab.errors import SeqlabError

ROOT = Path(__file__).resolve().parents[1]


def seqlab(*args, **kw):
    return subprocess.run([sys.executable, "-m", "seqlab.cli", *args], capture_output=True, text=True, **kw)


@pytest.mark.parametrize("command", ["data", "train", "runs", "tune", "serve", "registry", "predict", "generate", "optimize",
                                     "sample", "export", "models"])
def test_help_explains_every_command(command):
    out = seqlab(command, "--help")
    assert out.returncode == 0 and "usage: seqlab " + command in out.stdout
    if command in ("train", "tune"):
        assert "--hidden" in out.stdout and "LSTM width" in out.stdout and "resumes" in seqlab("--help").stdout


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    cases = [
        (["train", "--dropout", "1.5"], "dropout must be in [0, 1), got 1.5"),
        (["train", "--pooling", "avg"], "pooling must be 'max' or 'last', got 'avg'"),
        (["data", "--dataset", str(tmp_path / "none.csv"), "--text-column", "a", "--label-column", "b"],
         "does not exist"),
        (["predict", "--checkpoint", str(tmp_path), "hello"], "not a seqlab checkpoint"),
        (["train", "--config", str(tmp_path / "missing.yaml")], "does not exist"),
        (["train", "--model", "gru"], "unknown model 'gru'; available: char-lstm, cnn, lstm, lstm-ca"),
        (["train", "--model", "cnn", "--hidden", "64", "--dataset", "drugs-rating"], "model 'cnn' has no option 'hidden'"),
        (["train", "--embeddings", "glove"], "embeddings must be random, spacy or word2vec"),
        (["train", "--dataset", "sentence5"], "is not a built-in dataset"),
        (["train", "--dataset", "drugs-condition", "--keep-labels", "Flu"], "'Flu' is not a label of drugs-condition"),
        (["train", "--dataset", "drugs-rating", "--model", "minilm", "--embeddings", "spacy"],
         "model 'minilm' has no word embedding layer"),
        (["generate", "--checkpoint", str(tmp_path), "--temperature", "0"], "--temperature must be > 0"),
        (["generate", "--checkpoint", str(tmp_path), "--stream", "--n", "2"], "--stream prints one text"),
        (["tune", "--model", "minilm", "--dataset", "drugs-rating", "--limit", "20"], "has no LSTM width to search"),
        (["train", "--model", "smiles-vae", "--dataset", "drugs-rating"], "generates molecules, but drugs-rating is text"),
        (["train", "--model", "lstm", "--dataset", "moses"], "moses holds molecules (SMILES); choose a molecule model"),
        (["tune", "--model", "lstm", "--objective", "chem", "--dataset", "drugs-rating"],
         "--objective chem scores sampled molecules"),
        (["train", "--model", "smiles-vae", "--latent", "0"], "latent must be positive"),
        (["sample", "--checkpoint", str(tmp_path), "--n", "0"], "--n within 1..100000"),
    ]
    with ThreadPoolExecutor(3) as pool:  # each process spends most of its time importing: three at a time
        outs = list(pool.map(lambda case: seqlab(*case[0]), cases))
    for (args, expected), out in zip(cases, outs):
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines[-1].startswith("seqlab: error:") and expected in lines[-1], out.stderr


def test_precedence_defaults_yaml_flags(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"hidden": 77, "dropout": 0.1}, "train": {"epochs": 3}}))
    _, c = parse(["train", "--config", str(cfg), "--hidden", "99"])
    assert c["model"].options == {"hidden": 99, "dropout": 0.1} and c["train"].epochs == 3
    assert c["train"].lr == SECTIONS["train"]().lr
    cfg.write_text(yaml.safe_dump({"serving": {}}))
    with pytest.raises(SeqlabError, match="unknown section 'serving'"):
        parse(["train", "--config", str(cfg)])


def pipeline_job():
    spec = importlib.util.spec_from_file_location("pipeline", ROOT / "jobs" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_presets_and_full():
    parse_demo = pipeline_job().parse
    _, small = parse_demo([])
    _, full = parse_demo(["--full"])
    _, override = parse_demo(["--epochs", "5"])
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
    assert "registry" in build_parser().format_help()


@pytest.mark.parametrize("job,usage", [("train", "seqlab train"), ("tune", "seqlab tune"), ("serve", "seqlab serve"),
                                       ("pipeline", "pipeline.py")])
def test_job_scripts_are_the_cli(job, usage):
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / f"{job}.py"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and f"usage: {usage}" in out.stdout


def test_generate_streams_the_same_text_as_it_is_sampled(tmp_path):
    import json

    from conftest import tiny_checkpoint

    ckpt = str(tiny_checkpoint(tmp_path / "writer", "char-lstm"))
    args = ["generate", "--checkpoint", ckpt, "--category", "loans", "--prompt", "my ", "--length", "400",
            "--temperature", "1.5", "--seed", "4"]
    whole = seqlab(*args)
    assert whole.returncode == 0, whole.stderr
    text = json.loads(whole.stdout.strip().splitlines()[-1])["text"]
    # read the streamed output as it comes: the prompt first, then the characters, then one newline
    proc = subprocess.Popen([sys.executable, "-m", "seqlab.cli", *args, "--stream"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    chunks = []
    while chunk := proc.stdout.read1(4096):
        chunks.append(chunk)
    assert proc.wait(60) == 0, proc.stderr.read().decode()
    out = b"".join(chunks).decode()
    assert out == text + "\n" and out.startswith("my ") and len(text) > len("my ")
    bad = seqlab("generate", "--checkpoint", ckpt, "--category", "nope", "--stream")
    assert bad.returncode == 2 and bad.stdout == "" and "unknown category 'nope'" in bad.stderr  # nothing printed first


def test_models_lists_every_model_with_its_task():
    out = seqlab("models")
    assert out.returncode == 0
    for name, task in [("lstm", "classify"), ("lstm-stacked", "classify"), ("cnn", "classify"),
                       ("minilm", "classify"), ("char-lstm", "generate")]:
        assert any(line.startswith(name + " ") and task in line for line in out.stdout.splitlines()), out.stdout


def test_experiment_list_parses():
    import shlex

    spec = yaml.safe_load((ROOT / "configs" / "experiments" / "text.yaml").read_text())
    names = [r["name"] for r in spec["runs"] + spec["generators"]]
    assert len(names) == len(set(names)) and spec["recognisability"]["classifier"] in names
    for r in spec["runs"] + spec["generators"]:
        _, c = parse(["train", *shlex.split(spec["common"]), *shlex.split(r["args"])])
        assert c["train"].num_workers == 2, r["name"]


def test_molecule_experiment_list_parses():
    import shlex

    spec = yaml.safe_load((ROOT / "configs" / "experiments" / "molecules.yaml").read_text())
    assert len({r["name"] for r in spec["runs"]}) == len(spec["runs"])
    for r in spec["runs"]:
        _, c = parse(["train", *shlex.split(spec["common"]), *shlex.split(r["args"])])
        assert c["model"].model.startswith("smiles-") and c["data"].dataset == "moses", r["name"]


def test_entity_experiment_list_parses():
    import shlex

    from seqlab_tools.entity_report import runs_for

    spec = yaml.safe_load((ROOT / "configs" / "experiments" / "entities.yaml").read_text())
    runs = runs_for(spec)
    assert len({r["name"] for r in runs}) == len(runs)
    folds = spec["folds"]
    assert sum(r["group"] == "cv" for r in runs) == len(spec["datasets"]) * len(spec["models"]) * folds
    for r in runs:
        _, c = parse(["train", *shlex.split(spec["common"]), *shlex.split(r["args"])])
        assert c["model"].model in {m["name"] for m in spec["models"]}, r["name"]
        assert (c["data"].fold is None) == (r["group"] == "cross-domain" and c["data"].train_domain
                                            != c["data"].test_domain)


def test_help_lists_the_chosen_models_options():
    cnn = seqlab("train", "--model", "cnn", "--help").stdout
    assert "options of --model cnn" in cnn and "--filters" in cnn and "--kernel-size" in cnn
    assert "--hidden " not in cnn and "--latent" not in cnn  # other families' options are not listed
    vae = seqlab("tune", "--model", "smiles-vae", "--help").stdout
    assert "--latent" in vae and "--free-bits" in vae and "--filters" not in vae


def test_an_option_of_another_family_is_refused_naming_the_models_options():
    out = seqlab("train", "--model", "smiles-vae", "--filters", "8")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(
        "seqlab: error: model 'smiles-vae' has no option 'filters'; options: anneal_steps, beta, dropout")


def test_representation_selfies_is_for_the_molecule_sequence_models_only():
    _, c = parse(["train", "--model", "smiles-rnn", "--representation", "selfies"])
    assert c["model"].representation == "selfies" and c["model"].options == {}
    for model in ("smiles-ae", "lstm"):
        with pytest.raises(SeqlabError) as err:
            parse(["train", "--model", model, "--representation", "selfies"])
        assert str(err.value) == (f"--representation selfies: model {model!r} reads no SELFIES; models that do: "
                                  "smiles-vae, smiles-rnn")
    with pytest.raises(SeqlabError, match="representation must be smiles or selfies, got 'inchi'"):
        parse(["train", "--model", "smiles-vae", "--representation", "inchi"])


def test_every_builder_option_is_a_flag_with_its_type():
    from seqlab.models import MODELS, OPTIONS, option_type

    for name, e in MODELS.items():
        for option, p in e.parameters().items():
            choices = OPTIONS[option].choices if option in OPTIONS else ()
            value = choices[0] if choices else {bool: "false", int: "3", float: "0.25", str: "max"}[option_type(p)]
            _, c = parse(["train", "--model", name, f"--{option.replace('_', '-')}", value])
            assert type(c["model"].options[option]) is option_type(p), (name, option)


def test_yaml_values_take_their_fields_types(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {max_len: '64', limit: 100, keep_labels: null}\n"
                   "model: {model: lstm, hidden: '32', dropout: 1e-1, bidirectional: 'false', pooling: last}\n"
                   "train: {lr: 1e-3, epochs: 3, use_gpu: no, storage_path: ~/runs, weight_decay: 0}\n"
                   "search: {space: {hidden: 'lograndint[8, 64]'}, grid: false}\n")
    _, c = parse(["tune", "--config", str(cfg), "--batch-size", "16", "--seed", "7"])
    assert c["train"].lr == 0.001 and type(c["train"].lr) is float  # YAML 1.1 reads 1e-3 as text
    assert (c["train"].epochs, c["train"].batch_size, c["train"].seed, c["train"].use_gpu) == (3, 16, 7, False)
    assert c["train"].weight_decay == 0.0 and type(c["train"].weight_decay) is float
    assert (c["data"].max_len, c["data"].limit, c["data"].keep_labels) == (64, 100, None)
    assert c["model"].options == {"hidden": 32, "dropout": 0.1, "bidirectional": False, "pooling": "last"}
    assert c["search"].space == {"hidden": "lograndint[8, 64]"} and c["search"].grid is False


@pytest.mark.parametrize("where,text,expected", [
    ("yaml", "train: {epochs: ten}", "train.epochs: expected a whole number, got 'ten'"),
    ("yaml", "train: {lr: fast}", "train.lr: expected a number, got 'fast'"),
    ("yaml", "train: {use_gpu: maybe}", "train.use_gpu: expected true or false, got 'maybe'"),
    ("yaml", "model: {hidden: 2.5}", "model.hidden: expected a whole number, got 2.5"),
    ("yaml", "search: {space: [hidden]}", "search.space: expected a mapping (FIELD: VALUE), got ['hidden']"),
    ("yaml", "search: {space: {hidden: 'between[1, 2]'}}", "search space hidden: 'between[1, 2]' is not a spec"),
    ("yaml", "train: {epoch: 3}", "section 'train' has no field 'epoch'; fields are"),
    ("flag", ["--epochs", "ten"], "train.epochs: expected a whole number, got 'ten'"),
    ("flag", ["--lr", "1e-3x"], "train.lr: expected a number, got '1e-3x'"),
    ("flag", ["--hidden", "wide"], "model.hidden: expected a whole number, got 'wide'"),
    ("flag", ["--space", "hidden"], "--space 'hidden': expected FIELD=SPEC"),
])
def test_a_value_of_the_wrong_type_is_one_line_naming_the_field(tmp_path, capsys, where, text, expected):
    from seqlab.cli import main

    args = ["tune"]
    if where == "yaml":
        (tmp_path / "c.yaml").write_text(text + "\n")
        args += ["--config", str(tmp_path / "c.yaml")]
    else:
        args += text
    with pytest.raises(SystemExit) as exit_:  # in this process: the CLI's own error path, no Ray started
        main([*args, "--dataset", str(tmp_path / "never-read.csv")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("seqlab: error: ") and expected in err, err


def test_a_search_writes_outside_the_checkout_unless_told(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLAB_HOME", str(tmp_path))
    assert SECTIONS["search"]().resolved_results() == str(tmp_path / "results")
    assert SECTIONS["search"](results_dir="results").resolved_results() == "results"
    for f in sorted((ROOT / "configs").glob("*.yaml")):  # the shipped configs do not write into results/
        assert "results_dir" not in ((yaml.safe_load(f.read_text()) or {}).get("search") or {}), f


def test_readme_commands_read_nothing_a_fresh_clone_lacks():
    """A committed best.json names a checkpoint on the machine that made it: no README command reads one."""
    import re
    import shlex

    readme = (ROOT / "README.md").read_text()
    commands = [line for block in re.findall(r"```bash\n(.*?)```", readme, re.S)
                for line in block.replace("\\\n", " ").splitlines()]
    inputs = []
    for line in commands:
        words = shlex.split(line.split(" #", 1)[0], comments=True) if line.strip() else []
        inputs += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--checkpoint"]
        inputs += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "promote"]
    assert inputs and not [p for p in inputs if p.startswith("results/")], inputs


def test_true_false_flags_alone_and_negated():
    for argv, use_gpu in ((["--use-gpu"], True), (["--use-gpu", "false"], False), (["--no-use-gpu"], False),
                          (["--use-gpu", "--no-use-gpu"], False), ([], False)):
        assert parse(["train", *argv])[1]["train"].use_gpu is use_gpu, argv
    _, c = parse(["train", "--model", "char-lstm", "--conditional"])
    assert c["model"].options == {"conditional": True}
    assert parse(["train", "--model", "lstm", "--no-bidirectional"])[1]["model"].options == {"bidirectional": False}
    assert seqlab("--version").stdout.strip() == f"seqlab {__import__('seqlab').__version__}"
