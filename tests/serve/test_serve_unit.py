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
