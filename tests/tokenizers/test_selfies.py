import random

import numpy as np
import pytest
import selfies
from rdkit import Chem

from seqlab import tokenizers
from seqlab.data import molecules as molecules_mod
from seqlab.data.artifacts import MOSES_ARTIFACT, fetch_artifact
from seqlab.data.catalog import moses_smiles
from seqlab.errors import SeqlabError
from seqlab.tokenizers.selfies import SelfiesTokenizer, split_selfies


@pytest.fixture(scope="module")
def moses():
    """500 MOSES test molecules, RDKit-canonical as data preparation stores them (SELFIES conversion
    costs about 0.3 ms a molecule: a sample keeps the test light)."""
    mols = random.Random(0).sample(moses_smiles(fetch_artifact(MOSES_ARTIFACT), "test.csv.gz"), 500)
    return [Chem.CanonSmiles(s) for s in mols]


def test_moses_molecules_round_trip_through_selfies_ids(moses):
    tok = SelfiesTokenizer.build(moses)
    ids, offsets = tok.encode_many(moses)
    assert ids.dtype == np.int32 and len(offsets) == len(moses) + 1
    assert (ids[offsets[:-1]] == 2).all() and (ids[offsets[1:] - 1] == 3).all() and not (ids == tok.unk_id).any()
    rows = [ids[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    assert [r.tolist() for r in rows[:20]] == [tok.encode(s) for s in moses[:20]]
    decoded = [tok.decode(r) for r in rows]
    assert [Chem.CanonSmiles(s) for s in decoded] == moses  # the same molecule, canonical SMILES again
    assert [tok.spelled(r) for r in rows] == [selfies.encoder(s) for s in moses] == [tok.spell(s) for s in moses]
    assert tok.alphabet == sorted(tok.alphabet) and {"[C]", "[=O]", "[Ring1]", "[Branch1]"} <= set(tok.alphabet)
    assert not tok.has_stereo and not tok.has_isotopes  # MOSES has neither


def test_decoding_any_symbols_gives_a_molecule(moses):
    tok = SelfiesTokenizer.build(moses)
    g = random.Random(1)
    decoded = [tok.decode([g.randrange(4, len(tok)) for _ in range(g.randrange(1, 60))]) for _ in range(500)]
    # only symbols that place no atom (a lone [Branch1] or [Ring1]) decode to nothing
    assert sum(s == "" for s in decoded) < 50
    assert all(Chem.MolFromSmiles(s) is not None for s in decoded if s)


def test_encode_decode_specials_and_unknown_symbols():
    tok = SelfiesTokenizer.build(["CCO", "CCN"], max_len=3)
    assert tok.vocab == ["<pad>", "<unk>", "<bos>", "<eos>", "[C]", "[N]", "[O]"]
    ids = tok.encode("CCOCCN")
    assert ids[0] == 2 and ids[-1] == 3 and len(ids) == 8  # longer than max_len, still whole: never cut
    assert tok.words("CCl") == ["[C]", "[Cl]"] and tok.pieces("CCl") == [tok.index["[C]"], tok.unk_id]
    assert tok.unknown("ClCCBr.Cl") == ["[Cl]", "[Br]", "."]
    assert tok.decode([2, *tok.pieces("CCO"), 3, tok.index["[N]"]]) == "CCO"  # stops at <eos>
    assert tok.decode([2, tok.index["[C]"], 1, 0, tok.index["[O]"]]) == "CO"  # specials dropped
    assert tok.decode([3]) == "" and tok.unk_id == 1 and tok.specials == ([], [])


def test_a_molecule_selfies_cannot_write_is_refused_in_one_line():
    with pytest.raises(SeqlabError) as err:
        split_selfies("F[I](F)(F)(F)F")
    assert str(err.value) == ("SELFIES cannot write SMILES 'F[I](F)(F)(F)F': input violates the currently-set semantic "
                              "constraints ([IH0] with 5 bond(s) - a max. of 1 bond(s) was specified)")
    tok = SelfiesTokenizer.build(["CCO"])
    assert tok.spell("FI(F)(F)(F)F") is None
    with pytest.raises(SeqlabError, match="SELFIES cannot write SMILES"):
        tok.unknown("FI(F)(F)(F)F")


def test_stereo_and_isotope_symbols():
    tok = SelfiesTokenizer.build(["CCO", "C[C@@H](N)C(=O)O"])
    assert tok.has_stereo and not tok.has_isotopes
    assert SelfiesTokenizer.build(["CCO", "F/C=C/F"]).has_stereo
    assert SelfiesTokenizer.build(["CCO", "C=[13CH2]"]).has_isotopes and SelfiesTokenizer.build(["[2H]C"]).has_isotopes


def test_to_dict_round_trip():
    tok = SelfiesTokenizer.build(["c1ccccc1Cl", "C[C@@H](N)C(=O)O"], max_len=60)
    d = tok.to_dict()
    assert d["kind"] == "selfies"
    again = tokenizers.from_dict(d)
    assert isinstance(again, SelfiesTokenizer) and again.vocab == tok.vocab and again.max_len == 60
    assert again.encode("C[C@@H](N)C(=O)O") == tok.encode("C[C@@H](N)C(=O)O")


def test_conversion_in_a_pool_matches_one_process(moses, monkeypatch):
    mols = moses * 3  # two chunks of the pool's least size (1,000)
    alone = SelfiesTokenizer.build(mols)
    ids, offsets = alone.encode_many(mols)
    monkeypatch.setattr(molecules_mod, "POOL_MIN", 10)
    monkeypatch.setattr(molecules_mod, "_processes", lambda: 2)
    pooled = SelfiesTokenizer.build(mols)
    assert pooled.vocab == alone.vocab
    ids2, offsets2 = pooled.encode_many(mols)
    assert np.array_equal(ids, ids2) and np.array_equal(offsets, offsets2)
