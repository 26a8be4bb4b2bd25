import os
import random
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from rdkit import Chem

from seqlab import tokenizers
from seqlab.data import molecules as molecules_mod
from seqlab.data.artifacts import MOSES_ARTIFACT, fetch_artifact
from seqlab.data.catalog import MOSES_ROWS, moses_smiles
from seqlab.data.molecules import canonical_molecules, canonicalise, reason_kind
from seqlab.data.prepare import prepare
from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home
from seqlab.tokenizers.smiles import MAX_TOKENS, SmilesTokenizer, split_smiles


@pytest.mark.parametrize("smiles, whole", [
    ("Clc1ccc(Br)cc1", ["Cl", "Br"]),
    ("c1cc[nH]c1", ["[nH]"]),
    ("C[C@@H](N)C(=O)O", ["[C@@H]"]),
    ("C[N+](C)(C)C.[O-]", ["[N+]", "[O-]"]),
    ("C%10CCCCC%10", ["%10"]),
    ("C%(123)CCCC%(123)", ["%(123)"]),
])
def test_split_keeps_atoms_and_ring_closures_whole(smiles, whole):
    tokens = split_smiles(smiles)
    assert "".join(tokens) == smiles
    assert all(t in tokens for t in whole)


def test_split_tokens():
    assert split_smiles("CC(=O)Nc1ccc(Cl)cc1") == ["C", "C", "(", "=", "O", ")", "N", "c", "1", "c", "c", "c", "(",
                                                    "Cl", ")", "c", "c", "1"]
    assert split_smiles("C#N") == ["C", "#", "N"]
    assert split_smiles("F/C=C/F") == ["F", "/", "C", "=", "C", "/", "F"]


@pytest.mark.parametrize("smiles, char, at", [("CC O", " ", 2), ("C[CH", "[", 1), ("CCé", "é", 2), ("CCX", "X", 2)])
def test_split_refuses_what_no_token_covers(smiles, char, at):
    with pytest.raises(SeqlabError, match=re.escape(f"has {char!r} at position {at}")):
        split_smiles(smiles)


def test_tokenizer_round_trips_every_moses_test_molecule():
    # straight from the wheel's test.csv.gz, as shipped (not canonicalised)
    mols = moses_smiles(fetch_artifact(MOSES_ARTIFACT), "test.csv.gz")
    assert len(mols) == MOSES_ROWS["test.csv.gz"]
    start = time.perf_counter()
    tok = SmilesTokenizer.build(mols)
    assert all("".join(split_smiles(s)) == s for s in mols)
    ids, offsets = tok.encode_many(mols)
    assert (ids[offsets[:-1]] == 2).all() and (ids[offsets[1:] - 1] == 3).all()
    assert not (ids == tok.unk_id).any()
    decoded = [tok.decode(ids[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
    assert decoded == mols
    assert time.perf_counter() - start < 60
    assert max(np.diff(offsets)) - 2 <= 57  # MOSES SMILES have at most 57 characters, so as many tokens


def test_vocab_is_deterministic_and_starts_with_specials():
    mols = ["CCO", "c1ccccc1Cl", "C[C@@H](N)C(=O)O", "CC[nH]", "CCBr"]
    tok = SmilesTokenizer.build(mols)
    assert tok.vocab[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert tok.vocab == SmilesTokenizer.build(random.Random(1).sample(mols, len(mols))).vocab
    assert {"Cl", "Br", "[C@@H]", "[nH]"} <= set(tok.vocab) and "l" not in tok.vocab
    assert SmilesTokenizer.build(mols, min_freq=2).vocab == ["<pad>", "<unk>", "<bos>", "<eos>", "(", ")", "1", "C",
                                                             "O", "c"]
    assert len(tok) == len(tok.vocab)


def test_encode_decode():
    tok = SmilesTokenizer.build(["CCO", "CCN"], max_len=3)
    ids = tok.encode("CCOCCN")
    assert ids[0] == 2 and ids[-1] == 3 and len(ids) == 8  # longer than max_len, still whole: never cut
    assert tok.encode("CO", bos=False, eos=False) == tok.pieces("CO") == [tok.index["C"], tok.index["O"]]
    assert tok.words("CCl") == ["C", "Cl"]
    assert tok.pieces("CCl") == [tok.index["C"], tok.unk_id]  # Cl was not in the training molecules
    assert tok.decode([2, *tok.pieces("CCO"), 3, tok.index["N"]]) == "CCO"  # stops at <eos>
    assert tok.decode([2, tok.index["C"], 1, 0, tok.index["O"]]) == "CO"  # specials dropped
    assert tok.unk_id == 1 and tok.specials == ([], [])


def test_to_dict_round_trip():
    tok = SmilesTokenizer.build(["c1ccccc1Cl", "C[C@@H](N)C(=O)O"], max_len=60)
    d = tok.to_dict()
    assert d["kind"] == "smiles"
    again = tokenizers.from_dict(d)
    assert isinstance(again, SmilesTokenizer) and again.vocab == tok.vocab and again.max_len == 60
    assert again.encode("C[C@@H](N)C(=O)O") == tok.encode("C[C@@H](N)C(=O)O")


def test_canonicalise_gives_rdkit_reasons_and_is_quiet(capfd):
    inputs = ["C1=CC=CC=C1", "OCC", "CC(C)(C)(C)(C)C", "c1ccc", "CCX", "", "CCO ethanol", "c1ccnc1", "[H]"]
    canonical, reasons = canonicalise(inputs)
    assert canonical[:2] == ["c1ccccc1", "CCO"] and reasons[:2] == [None, None]
    assert canonical[2:8] == [None] * 6
    assert reasons[2] == "Explicit valence for atom # 1 C, 6, is greater than permitted"
    assert reasons[3] == "SMILES Parse Error: unclosed ring for input: 'c1ccc'"
    assert reasons[4] == "SMILES Parse Error: syntax error while parsing: CCX (around position 3)"
    assert reasons[5] == "empty SMILES"
    assert reasons[6] == "whitespace inside the SMILES"  # RDKit alone would read it as CCO
    assert reasons[7].startswith("Can't kekulize mol.")
    assert canonical[8] == "[H]"  # valid; RDKit's warning about it is not printed
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_canonicalise_in_a_pool_matches_one_process(monkeypatch, capfd):
    inputs = ["C1=CC=CC=C1", "CC(C)(C)(C)(C)C", "c1ccc", "N[C@@H](C)C(=O)O", "OCC"] * 400
    alone = canonicalise(inputs)
    monkeypatch.setattr(molecules_mod, "POOL_MIN", 10)
    assert canonicalise(inputs, processes=2) == alone
    assert capfd.readouterr().err == ""


@pytest.mark.ray
def test_pool_in_a_ray_driver_exits_quietly(ray_local):
    """A process that ran ``ray.init()`` has Ray's SIGTERM handler, which prints a stack trace;
    forked pool workers inherit it, so the pool must let them exit rather than terminate them.
    Whether a terminated worker prints is a race, hence six pools. The process joins the session's
    Ray instance (``ray.init`` sets the handler before it connects or starts anything), so that no
    second instance starts on the same cores."""
    script = (
        "import ray; ray.init(log_to_driver=False)\n"
        "import seqlab.data.molecules as s; s.POOL_MIN = 10\n"
        "for _ in range(6): print(s.canonicalise(['OCC', 'c1ccc'] * 200, processes=2)[0][:2])\n"
        "ray.shutdown()\n")
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(molecules_mod.__file__)))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([lib, os.environ.get("PYTHONPATH", "")]),
               RAY_ADDRESS=ray_local.get_runtime_context().gcs_address)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("['CCO', None]")
    assert "SIGTERM" not in done.stderr, done.stderr


def test_molecules_too_long_for_a_model_are_refused():
    canonical, reasons = canonical_molecules(["C" * (MAX_TOKENS + 1), "C" * MAX_TOKENS])
    assert canonical == [None, "C" * MAX_TOKENS] and reasons == [f"more than {MAX_TOKENS} SMILES tokens", None]


def test_reason_kind_drops_what_names_one_molecule():
    assert reason_kind("SMILES Parse Error: unclosed ring for input: 'c1ccc'") == "SMILES Parse Error: unclosed ring"
    assert reason_kind("Explicit valence for atom # 12 N, 4, is greater than permitted") == (
        "Explicit valence for atom # N N, 4, is greater than permitted")
    assert reason_kind("Can't kekulize mol.  Unkekulized atoms: 0 1 2 3 4") == (
        "Can't kekulize mol.  Unkekulized atoms: ...")


MOLS = ["c1ccccc1", "CCO", "CCN", "CC(=O)O", "C[C@@H](N)C(=O)O", "Clc1ccccc1Br", "c1cc[nH]c1", "CCCCCCCC",
        "Cc1ccc(S(N)(=O)=O)cc1", "CCc1ccccc1", "c1ccncc1", "C1CCCCC1"]


def test_user_csv_with_invalid_rows(tmp_path, capsys):
    rows = ["id,SMILES,kind"] + [f"{i},{s},{'ab'[i % 2]}" for i, s in enumerate(MOLS, 1)]
    rows += ["13,CC(C)(C)(C)(C)C,a", "14,c1ccc,b", "15,C1=CC=CC=C1,a", "16,,a", "17,OCC,b"]
    (tmp_path / "mols.csv").write_text("\n".join(rows) + "\n")
    prepared = prepare(str(tmp_path / "mols.csv"), molecules=True, data_dir=tmp_path / "data")
    card = prepared.card
    assert card["kind"] == "molecules" and card["text_column"] == "SMILES" and card["classes"] == ["molecule"]
    assert card["invalid"]["count"] == 3 and card["duplicates"] == 2  # benzene and ethanol written another way
    assert card["invalid"]["reasons"] == {"Explicit valence for atom # N C, 6, is greater than permitted": 1,
                                          "SMILES Parse Error: unclosed ring": 1, "empty SMILES": 1}
    assert card["invalid"]["examples"][0] == {"where": "mols.csv row 13", "smiles": "CC(C)(C)(C)(C)C",
                                              "reason": "Explicit valence for atom # 1 C, 6, is greater than permitted"}
    assert sum(card["counts"].values()) == len(MOLS)
    texts = sorted(t for s in ("train", "validation", "test") for t in prepared.split(s)["text"])
    assert texts == sorted(Chem.CanonSmiles(s) for s in MOLS)
    out = capsys.readouterr().out
    assert "3 of 17 SMILES invalid or refused, skipped (row 13: Explicit valence" in out and "row 14: SMILES" in out
    readme = (prepared.root / "README.md").read_text()
    assert "Invalid or refused SMILES, left out: 3" in readme and "mols.csv row 14" in readme

    labelled = prepare(str(tmp_path / "mols.csv"), molecules=True, label_column="kind", data_dir=tmp_path / "data")
    assert labelled.card["classes"] == ["a", "b"]


def test_smi_file(tmp_path):
    lines = ["SMILES Name", *(f"{s}\tmol{i}" for i, s in enumerate(MOLS)), "", "c1ccc broken", "CCO  ethanol again"]
    (tmp_path / "mols.smi").write_text("\n".join(lines) + "\n")
    prepared = prepare(str(tmp_path / "mols.smi"), molecules=True, data_dir=tmp_path / "data")
    card = prepared.card
    assert card["invalid"]["count"] == 1 and card["invalid"]["examples"][0]["where"] == f"mols.smi line {len(MOLS) + 3}"
    assert card["duplicates"] == 1 and sum(card["counts"].values()) == len(MOLS)


def test_molecule_file_errors(tmp_path):
    (tmp_path / "a.csv").write_text("name,structure\n" + "".join(f"m{i},{s}\n" for i, s in enumerate(MOLS)))
    with pytest.raises(SeqlabError, match=r"a.csv has no SMILES column; columns are \['name', 'structure'\] "
                                          r"\(expected a column named 'smiles', or name one with --text-column\)"):
        prepare(str(tmp_path / "a.csv"), molecules=True, data_dir=tmp_path)
    assert prepare(str(tmp_path / "a.csv"), molecules=True, text_column="structure",
                   data_dir=tmp_path).card["counts"]["train"] > 0
    (tmp_path / "few.smi").write_text("CCO\nCCN\nc1ccc\n")
    with pytest.raises(SeqlabError, match="few.smi has 2 valid molecules; at least 10 are needed"):
        prepare(str(tmp_path / "few.smi"), molecules=True, data_dir=tmp_path)


def test_builtin_moses(tmp_path):
    """Canonicalises MOSES train and test once per machine (about 2 minutes on 2 cores), then reads the cache."""
    prepared = prepare("moses", data_dir=tmp_path)
    card, counts = prepared.card, prepared.card["counts"]
    assert card["kind"] == "molecules" and card["classes"] == ["molecule"]
    # RDKit reads every MOSES SMILES, and no two are one molecule
    assert card["invalid"] == {"count": 0, "reasons": {}, "examples": []} and card["duplicates"] == 0
    assert counts["train"] + counts["validation"] == MOSES_ROWS["train.csv.gz"]
    assert counts["test"] == MOSES_ROWS["test.csv.gz"]
    assert abs(counts["validation"] / (counts["train"] + counts["validation"]) - 0.1) < 0.001
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        texts = prepared.split(split)["text"]
        assert all(Chem.CanonSmiles(t) == t for t in texts.iloc[rng.choice(len(texts), 500, replace=False)])
    readme = (prepared.root / "README.md").read_text()
    assert "MIT" in readme and "Invalid or refused SMILES, left out: 0" in readme and MOSES_ARTIFACT.sha256 in readme

    # the scaffold split reuses the canonical train file: only its own test file is new
    import rdkit

    cache = seqlab_home() / "data" / "moses-canonical" / f"rdkit-{rdkit.__version__}" / "train.parquet"
    before = os.stat(cache).st_mtime_ns
    scaffolds = prepare("moses-scaffolds", data_dir=tmp_path)
    assert os.stat(cache).st_mtime_ns == before
    assert scaffolds.card["counts"]["test"] == MOSES_ROWS["test_scaffolds.csv.gz"]
    assert scaffolds.split("validation")["text"].equals(prepared.split("validation")["text"])
