import io
import pickle
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator
from scipy import linalg

from seqlab import chem
from seqlab.data.artifacts import MOSES_ARTIFACT, fetch_artifact
from seqlab.data.catalog import moses_smiles
from seqlab.errors import SeqlabError
from seqlab.storage import seqlab_home

# Drug-like and assorted molecules, all distinct
DIVERSE = [
    "CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "CC(=O)Nc1ccc(O)cc1", "OC(=O)c1ccccc1O", "C1CCCCC1", "c1ccc2ccccc2c1", "CCN(CC)CC",
    "O=C(O)CCC(=O)O", "ClC(Cl)(Cl)Cl", "C1=CC=CN=C1", "CC(C)(C)OC(=O)N", "FC(F)(F)c1ccccc1",
    "CCOC(=O)C", "N#Cc1ccccc1", "CS(=O)(=O)N", "c1ccc(cc1)-c1ccccc1", "OCC(O)CO", "CCCCCCCCCC",
    "C1CCNCC1", "c1ccsc1", "c1ccoc1", "O=C1CCCC1", "CC(N)C(=O)O", "NC(=O)N", "Brc1ccccc1",
    "C=CC=C", "CC#CC", "O=[N+]([O-])c1ccccc1", "CN1CCC[C@H]1c1cccnc1",
]


def alkanes_and_alcohols(n=200):
    """Small acyclic alkanes, alcohols and ethers: far from MOSES's drug-like molecules."""
    out = []
    for k in range(1, 30):
        c = "C" * k
        out += [c, c + "O", "O" + c + "O", "CC(C)" + c, "CC(C)(C)" + c, c + "C(O)C", "CC(O)" + c, c + "OC"]
    return list(dict.fromkeys(chem.canonicals(out)))[:n]


@pytest.fixture(scope="module")
def moses_sample():
    # test.csv is in no random order: contiguous slices score FCD 2-5 against the whole set
    test = moses_smiles(fetch_artifact(MOSES_ARTIFACT), "test.csv.gz")
    idx = np.random.default_rng(0).choice(len(test), 2000, replace=False)
    return [test[i] for i in idx]


@pytest.fixture(scope="module")
def alkane_stats():
    return chem.fcd_stats(alkanes_and_alcohols(200))


@pytest.fixture(scope="module")
def moses_stats():
    return chem.moses_test_stats("test")


def test_canonical_and_validity():
    assert chem.canonical("OCC") == chem.canonical("C(O)C") == "CCO"
    assert chem.canonical("C1=CC=CC=C1") == "c1ccccc1"
    for bad in ["C1CC", "C(C)(C)(C)(C)C", "c1ccccc", "c1cccc1", "CC(C", "", "Xx"]:
        assert chem.canonical(bad) is None, bad
    assert chem.validity(["CCO", "C1CC", "", "c1ccccc1", "C(C)(C)(C)(C)C", "c1cccc1"]) == pytest.approx(2 / 6)
    assert chem.validity([]) == 0.0


@pytest.mark.parametrize("smiles, reason", [
    ("C1CC", "unclosed ring"),
    ("c1ccccc", "unclosed ring"),
    ("C(C)(C)(C)(C)C", "Explicit valence for atom # 0 C, 5, is greater than permitted"),
    ("CC[N+](C)(C)(C)C", "Explicit valence for atom # 2 N"),
    ("c1cccc1", "kekulize"),
    ("CC(C", "extra open parentheses"),
    ("C)C", "extra close parentheses"),
    ("C%", "syntax error"),
    ("", "empty"),
])
def test_parse_error_names_the_problem(smiles, reason, capfd):
    msg = chem.parse_error(smiles)
    assert msg is not None and reason in msg and "\n" not in msg, msg
    assert capfd.readouterr().err == ""  # RDKit's own log went nowhere


def test_parse_error_of_valid_and_syntax_position():
    assert chem.parse_error("CCO") is None and chem.parse_error("[NH4+].[Cl-]") is None
    assert chem.parse_error("CC(=O)C%").endswith("(around position 8)")


def test_bulk_metrics_are_quiet(capfd):
    chem.validity(["C1CC", "C(C)(C)(C)(C)C", "c1cccc1"] * 10)
    chem.internal_diversity(["C1CC", "CCO"])
    assert capfd.readouterr().err == ""


def test_uniqueness_counts_canonical_forms_of_valid_samples():
    samples = ["CCO", "OCC", "C(O)C", "c1ccccc1", "C1=CC=CC=C1", "bad("]
    assert chem.uniqueness(samples) == pytest.approx(2 / 5)
    assert chem.uniqueness(samples, k=2) == pytest.approx(1 / 2)
    assert chem.uniqueness(samples, k=4) == pytest.approx(2 / 4)
    assert chem.uniqueness(samples, k=100) == pytest.approx(2 / 5)  # fewer valid than k: all valid ones
    # as MOSES: k counts valid samples, invalid ones are skipped before taking the first k
    assert chem.uniqueness(["C1CC", "CCO", "", "CCN", "OCC"], k=2) == 1.0
    assert chem.uniqueness(["C1CC", ""]) == 0.0


def test_novelty_against_training_set():
    train = set(chem.canonicals(["OCC", "C1=CC=CC=C1"]))
    samples = ["CCO", "CCN", "NCC", "c1ccccc1", "C1CC", "CCN"]
    assert chem.novelty(samples, train) == pytest.approx(1 / 3)  # distinct valid: CCO, CCN, c1ccccc1
    assert chem.novelty(["CCCl"], train) == 1.0
    assert chem.novelty(["C1CC"], train) == 0.0


def test_reconstruction():
    originals = ["CCO", "c1ccccc1", "CCN", "C1CC"]
    decoded = ["OCC", "C1=CC=CC=C1", "CCC", "C1CC"]  # an invalid pair is no match
    assert chem.reconstruction(originals, decoded) == 0.5
    with pytest.raises(ValueError, match="3 originals but 2"):
        chem.reconstruction(["C", "C", "C"], ["C", "C"])


def reference_intdiv(smiles, p=1):
    """MOSES IntDiv with RDKit's own Tanimoto, one pair at a time."""
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fps = [gen.GetFingerprint(chem.mol(s)) for s in smiles if chem.mol(s) is not None]
    rows = [np.mean(np.array(DataStructs.BulkTanimotoSimilarity(f, fps)) ** p) ** (1 / p) for f in fps]
    return 1 - float(np.mean(rows))


def test_internal_diversity():
    assert chem.internal_diversity(["CCO", "OCC", "C(O)C"]) == pytest.approx(0.0, abs=1e-12)
    assert chem.internal_diversity(["C1CC"]) == 0.0
    samples = DIVERSE + ["CCO", "OCC", "C1CC"]  # duplicates count, invalid ones do not
    got = chem.internal_diversity(samples)
    assert got > 0.5
    assert got == pytest.approx(reference_intdiv(samples), abs=1e-6)
    assert chem.internal_diversity(samples, p=2) == pytest.approx(reference_intdiv(samples, p=2), abs=1e-6)
    # small blocks give the same figure
    assert chem.internal_diversity(samples, block=7) == pytest.approx(got, abs=1e-12)


def test_chemnet_one_hot_follows_fcd_torch():
    x = chem.chemnet_one_hot("BrCCl.CO")  # reading stops at the first '.'
    ix = chem.CHEMNET_VOCAB.index
    assert x.shape == (350, 35)
    assert [int(i) for i in x[:5].argmax(1)] == [ix("Br"), ix("C"), ix("Cl"), ix("."), 0]
    assert x[:4].sum() == pytest.approx(4 / 35) and x[4:].sum() == 0
    assert chem.chemnet_one_hot("[Li+]")[1].argmax() == ix("X")  # 'Li' is read as one unknown symbol
    assert chem.chemnet_one_hot("C" * 500)[349].argmax() == ix(".")  # truncated with an end mark


def test_chemnet_activations_reject_invalid():
    with pytest.raises(ValueError, match="unclosed ring"):
        chem.chemnet_activations(["CCO", "C1CC"])


def test_fcd_self_and_far(moses_sample, alkane_stats):
    drugs = chem.fcd_stats(moses_sample[:300])
    assert chem.frechet_distance(*drugs, *drugs) == pytest.approx(0.0, abs=1e-3)
    near = chem.fcd(moses_sample[300:600], drugs)  # about 7: 300 molecules cannot fill 512 dimensions
    far = chem.frechet_distance(*drugs, *alkane_stats)  # about 60
    assert far > 30 and far > 4 * near
    assert np.isnan(chem.fcd(["CCO", "C1CC"], drugs))


def test_moses_stats_are_cached_as_plain_npz(moses_stats):
    mu, sigma = moses_stats
    assert mu.shape == (512,) and sigma.shape == (512, 512)
    assert np.allclose(sigma, sigma.T) and np.all(np.linalg.eigvalsh(sigma) > -1e-6)
    with np.load(seqlab_home() / "chem" / "moses_test_fcd.npz", allow_pickle=False) as z:
        assert np.array_equal(z["mu"], mu)
    with pytest.raises(SeqlabError, match="test_scaffolds"):
        chem.moses_test_stats("train")


def test_fcd_of_moses_test_sample_against_moses_stats(moses_sample, moses_stats, alkane_stats):
    # the check of the ChemNet port: 2,000 random test molecules measure about 0.6 against the
    # whole test set (10,000 measure 0.12); a broken encoding or layer lands far higher
    mu, sigma = chem.fcd_stats(moses_sample)
    assert chem.frechet_distance(mu, sigma, *moses_stats) < 1.5
    assert chem.frechet_distance(*alkane_stats, *moses_stats) > 10
    assert 0.84 < chem.internal_diversity(moses_sample) < 0.87  # MOSES reports IntDiv 0.856 for test


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 64)), rng.normal(size=(300, 64)) @ rng.normal(size=(64, 64)) * 0.3 + 1
    (m1, s1), (m2, s2) = (a.mean(0), np.cov(a.T)), (b.mean(0), np.cov(b.T))
    diff = m1 - m2
    expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert chem.frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-9)
    assert chem.frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)


def npy_bytes(pickled: bytes) -> io.BytesIO:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
    f.write(pickled)
    f.seek(0)
    return f


class Payload:
    def __reduce__(self):
        import os

        return os.system, ("echo pwned > /dev/null",)


def test_restricted_unpickler():
    stats = {"FCD": {"mu": np.arange(3.0), "sigma": np.eye(3)}, "Frag": {"frag": Counter({"C": 2})}}
    f = io.BytesIO()
    np.save(f, np.array(stats, dtype=object), allow_pickle=True)
    f.seek(0)
    got = chem.read_pickled_npy(f)
    assert np.array_equal(got["FCD"]["sigma"], np.eye(3)) and got["Frag"]["frag"] == {"C": 2}
    with pytest.raises(pickle.UnpicklingError, match="refusing to load (posix|os|nt).system"):
        chem.read_pickled_npy(npy_bytes(pickle.dumps(Payload(), protocol=2)))


def test_summary_keys_and_fcd(moses_stats):
    samples = ["CCO", "OCC", "c1ccccc1", "C1CC", "CCN"]
    s = chem.summary(samples, train={"CCO"}, ks=(2, 100))
    assert set(s) == {"n", "valid", "unique@2", "novelty", "intdiv"}
    assert s["n"] == 5 and s["valid"] == pytest.approx(0.8) and s["unique@2"] == 0.5
    assert s["novelty"] == pytest.approx(2 / 3) and 0 < s["intdiv"] < 1
    assert set(chem.summary(["CCO"] * 1000)) == {"n", "valid", "unique@1k", "intdiv"}
    far = chem.summary(alkanes_and_alcohols(100), test_stats=moses_stats)["fcd_test"]
    assert far > 10


def test_drawing(tmp_path):
    text = chem.svg("c1ccccc1O", size=(320, 240))
    assert text.lstrip().startswith("<?xml") and "</svg>" in text and "width='320px'" in text
    with pytest.raises(ValueError, match="unclosed ring"):
        chem.svg("C1CC")
    path = chem.grid_png(DIVERSE[:7] + ["C1CC"], tmp_path / "grid.png", per_row=3, legends=list("abcdefgh"))
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (3 * 250, 3 * 200)


@pytest.mark.parametrize("smiles, expected, changes", [
    ("CC(=O)[O-].[Na+]", "CC(=O)O", ["kept the largest fragment (dropped '[Na+]')", "neutralised charges"]),
    ("CCN(CC)CC.Cl", "CCN(CC)CC", ["kept the largest fragment (dropped 'Cl')"]),  # a hydrochloride
    ("Cl.Cl.NCCc1ccccc1", "NCCc1ccccc1", ["kept the largest fragment (dropped 'Cl.Cl')"]),
    ("O.O.CCO", "CCO", ["kept the largest fragment (dropped 'O.O')"]),  # a hydrate
    ("C[NH+](C)C", "CN(C)C", ["neutralised charges"]),
    ("[NH3+]CC(=O)[O-]", "NCC(=O)O", ["neutralised charges"]),  # a zwitterion
    ("[13CH3]O", "CO", ["removed isotope labels (1 atom)"]),
    ("[2H]C([2H])([2H])O", "CO", ["removed isotope labels (3 atoms)"]),
    ("C[C@H](N)C(=O)O", "CC(N)C(=O)O", ["removed stereo (1 centre)"]),
    ("F/C=C/F", "FC=CF", ["removed stereo (1 double bond)"]),
    ("C/C=C/[C@@H](F)Cl", "CC=CC(F)Cl", ["removed stereo (1 centre, 1 double bond)"]),
    # cisplatin keeps the fragment with the metal (3 heavy atoms), not an ammonia (1 heavy atom)
    ("N.N.Cl[Pt]Cl", "[Cl][Pt][Cl]", ["kept the largest fragment (dropped 'N.N')"]),
    ("[Fe]", "[Fe]", []),
    ("C" * 80, "C" * 80, []),
    ("C1CCCCCCCCCCCCCCCCCCCCCCC1", "C1CCCCCCCCCCCCCCCCCCCCCCC1", []),  # a macrocycle
    ("C[N+](C)(C)C", "C[N+](C)(C)C", []),  # quaternary: no proton to take away, stays charged
    ("C[N+](C)(C)CCO.[Cl-]", "C[N+](C)(C)CCO", ["kept the largest fragment (dropped '[Cl-]')"]),  # choline chloride
    ("C[N+](C)(C)CC(=O)[O-]", "C[N+](C)(C)CC(=O)[O-]", []),  # betaine: the carboxylate balances the N
    ("O=[N+]([O-])c1ccccc1", "O=[N+]([O-])c1ccccc1", []),  # nitro: charge-separated by nature
    ("OCC", "CCO", []),  # only the atom order: no change to report
])
def test_standardize(smiles, expected, changes, capfd):
    assert chem.standardize(smiles) == (expected, changes)
    assert capfd.readouterr().err == ""  # MolStandardize's own log went nowhere


def test_standardize_keeps_stereo_and_isotopes_when_asked():
    assert chem.standardize("C[C@H](N)C(=O)O.Cl", keep_stereo=True) == (
        "C[C@H](N)C(=O)O", ["kept the largest fragment (dropped 'Cl')"])
    assert chem.standardize("F/C=C/F", keep_stereo=True) == ("F/C=C/F", [])
    assert chem.standardize("[13CH3]O", keep_isotopes=True) == ("[13CH3]O", [])
    assert chem.standardize("[2H][C@@H](C)O", keep_stereo=True, keep_isotopes=True) == ("[2H][C@@H](C)O", [])


@pytest.mark.parametrize("smiles, reason", [("C1CC", "unclosed ring"), ("C(C)(C)(C)(C)C", "Explicit valence"),
                                            ("", "empty SMILES"), ("Xx", "SMILES Parse Error")])
def test_standardize_refuses_what_rdkit_cannot_read(smiles, reason):
    with pytest.raises(SeqlabError) as err:
        chem.standardize(smiles)
    assert str(err.value).startswith(f"{smiles!r} is not a valid molecule: ") and reason in str(err.value)
