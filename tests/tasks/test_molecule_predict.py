"""A SMILES generator checkpoint without Ray: sample, encode, decode, neighbours, evaluate, `seqlab sample`;
the encode and neighbours routes and commands, with and without standardisation."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab import checkpoint, chem
from seqlab.cli import main, run
from seqlab.errors import BadInput, SeqlabError
from seqlab.models import build_model
from seqlab.tasks import Context
from seqlab.tasks.encoding import spelled_split
from seqlab.tasks.molecule import (
    EncodeRequest,
    MoleculeGeneration,
    MoleculeGenerator,
    NeighboursRequest,
    OptimizeRequest,
    encode,
    neighbours,
    optimize,
    standardize_for,
)
from seqlab.tokenizers.selfies import SelfiesTokenizer
from seqlab.tokenizers.smiles import SmilesTokenizer

MOLECULES = ["CCO", "CCN", "c1ccccc1O", "CC(=O)O", "CCCl", "c1ccncc1", "CC(C)O", "OCCO"]
ALPHABET = "( ) 1 = C Cl N O c n"  # the tokens of MOLECULES: the toy model's alphabet


def save(path, name, tokenizer=SmilesTokenizer, **kw):
    tok = tokenizer.build(MOLECULES, max_len=20)
    torch.manual_seed(0)
    kwargs = {"max_len": 20, **kw}
    model = build_model(name, vocab_size=len(tok), num_classes=1, **kwargs)
    meta = {"task": "molecule", "model": {"name": name, "kwargs": kwargs}, "labels": ["molecule"],
            "vocab_size": len(tok), "epoch": 0, "metrics": {}, "max_len": 20,
            "data": {"name": "toy", "keep_labels": None}}
    checkpoint.save(path, model=model, optimizer=None, meta=meta, tokenizer=tok.to_dict())
    return path


@pytest.fixture
def vae(tmp_path):
    return MoleculeGenerator(save(tmp_path / "vae", "smiles-vae", hidden=16, latent=4, embed_dim=8))


def test_sample_is_reproducible_by_seed(vae):
    a, b = vae.sample(20, seed=3), vae.sample(20, seed=3)
    assert a == b and len(a) == 20 and a != vae.sample(20, seed=4)
    assert all(isinstance(s, str) for s in a)


def test_encode_decode_and_neighbours(vae):
    z = vae.encode_smiles(["CCO", "c1ccccc1O"])
    assert z.shape == (2, 4) and np.isfinite(z).all()
    assert not np.allclose(z[0], z[1])
    out = vae.decode(z)
    assert len(out) == 2 and out == vae.decode(z)  # greedy: the same code gives the same molecule
    near = vae.neighbours("CCO", n=30, radius=2.0)
    for m in near:
        assert chem.canonical(m["smiles"]) == m["smiles"] != "CCO" and 0 <= m["similarity"] <= 1
    assert [m["distance"] for m in near] == sorted(m["distance"] for m in near)


def test_a_token_never_seen_in_training_is_refused(vae):
    with pytest.raises(SeqlabError) as err:
        vae.encode_smiles(["CCO", "CCBr"])
    assert str(err.value) == ("'CCBr': token 'Br' never occurred in the training molecules, so the model cannot "
                              f"encode it (the model's alphabet: {ALPHABET})")
    with pytest.raises(SeqlabError, match="it has 22 tokens; the model reads at most 20"):
        vae.encode_smiles(["C" * 22])


def test_a_model_without_latent_refuses_to_encode(tmp_path):
    rnn = MoleculeGenerator(save(tmp_path / "rnn", "smiles-rnn", hidden=16, embed_dim=8))
    assert rnn.latent_size == 0 and len(rnn.sample(5)) == 5
    with pytest.raises(SeqlabError, match="has no latent space"):
        rnn.encode_smiles(["CCO"])


def test_evaluate_adds_reconstruction_and_sample_quality(vae):
    frame = pd.DataFrame({"text": MOLECULES, "label": "molecule"})
    out = vae.evaluate(frame, samples=50, reconstruct=8)
    assert {"loss", "recon", "kl", "token_accuracy", "reconstruction", "valid", "unique"} <= set(out)
    assert out["loss"] == pytest.approx(out["recon"] + out["kl"], rel=1e-6) and out["n"] == 8
    assert 0 <= out["reconstruction"] <= 1


def test_sample_command_prints_json_lines_and_draws(vae, tmp_path, capsys):
    out = run(["sample", "--checkpoint", str(tmp_path / "vae"), "--n", "40", "--seed", "1",
               "--grid", str(tmp_path / "grid.png")])
    printed = capsys.readouterr().out
    lines = [json.loads(x) for x in printed.splitlines() if x.startswith("{")]
    assert [x["smiles"] for x in lines] == out["smiles"] and len(lines) == 40
    assert [x["valid"] for x in lines] == [chem.canonical(s) is not None for s in out["smiles"]]
    assert f"{sum(out['valid'])} of 40 valid" in printed
    # an untrained model draws what valid molecules it happens to write, and says so when there are none
    assert (tmp_path / "grid.png").exists() == any(out["valid"])


def encode_route(model, smiles, standardize=False):
    return encode(model, EncodeRequest(smiles=smiles, standardize=standardize), Context())


def refusal(fn, *args) -> BadInput:
    with pytest.raises(BadInput) as err:
        fn(*args)
    assert err.value.status == 422
    return err.value


# each: (sent, what the model reads once standardised, what changed)
STANDARDISED = [
    ("CC(=O)[O-].[Na+]", "CC(=O)O", ["kept the largest fragment (dropped '[Na+]')", "neutralised charges"]),
    ("CCN.Cl", "CCN", ["kept the largest fragment (dropped 'Cl')"]),
    ("[13CH3]O", "CO", ["removed isotope labels (1 atom)"]),
    ("C[C@H](N)C(=O)O", "CC(N)C(=O)O", ["removed stereo (1 centre)"]),
    ("[NH3+]CC(=O)[O-]", "NCC(=O)O", ["neutralised charges"]),
    ("C1CCCCCCCCCCCC1", "C1CCCCCCCCCCCC1", []),  # a macrocycle, within the toy model's 20 tokens
    ("OCC", "CCO", []),
]


def test_encode_route_standardises_when_asked_and_says_what_changed(vae):
    sent = [s for s, _, _ in STANDARDISED]
    out = encode_route(vae, sent, standardize=True)
    assert out["canonical"] == [s for _, s, _ in STANDARDISED]
    assert out["standardized"] == [{"input": a, "smiles": b, "changes": c} for a, b, c in STANDARDISED]
    assert np.allclose(out["latents"], vae.encode_smiles(out["canonical"]), atol=1e-6)


def test_encode_route_without_standardize_answers_as_before(vae):
    out = encode_route(vae, ["OCC", "c1ccccc1O"])
    assert set(out) == {"latent_size", "canonical", "latents"} and out["canonical"] == ["CCO", "Oc1ccccc1"]
    assert np.allclose(out["latents"], vae.encode_smiles(["CCO", "Oc1ccccc1"]), atol=1e-6)
    err = refusal(encode_route, vae, ["CCO", "CC(=O)[O-].[Na+]"])
    assert err.message == (
        "smiles[1] 'CC(=O)[O-].[Na+]': tokens '[O-]', '.', '[Na+]' never occurred in the training molecules, so the "
        f"model cannot encode them (the model's alphabet: {ALPHABET}); with standardize on it would read 'CC(=O)O' "
        "(kept the largest fragment (dropped '[Na+]'); neutralised charges)")
    err = refusal(encode_route, vae, ["C[C@H](N)C(=O)O"])
    assert "token '[C@H]' never occurred" in err.message and "it would read 'CC(N)C(=O)O'" in err.message


@pytest.mark.parametrize("smiles, message", [
    # what standardisation cannot make readable: the token (the atom, a charge that stayed) and the alphabet
    ("N.N.Cl[Pt]Cl", "smiles[0] 'N.N.Cl[Pt]Cl': tokens '[Cl]', '[Pt]' never occurred in the training molecules, "
                     f"so the model cannot encode them (the model's alphabet: {ALPHABET})"),
    ("C[N+](C)(C)C", "smiles[0] 'C[N+](C)(C)C': token '[N+]' never occurred in the training molecules, so the "
                     f"model cannot encode it (the model's alphabet: {ALPHABET})"),
    ("F/C=C/F", f"token 'F' never occurred in the training molecules, so the model cannot encode it (the model's "
                f"alphabet: {ALPHABET})"),
    ("Ic1ccccc1.Cl", "token 'I' never occurred"),
    ("CCOP(=O)(O)O", "token 'P' never occurred"),
    ("C" * 30, f"smiles[0] {'C' * 30!r}: it has 30 tokens; the model reads at most 20"),
    ("C1CC", "smiles[0] 'C1CC' is not a valid molecule: SMILES Parse Error: unclosed ring"),
])
def test_what_standardisation_cannot_mend_is_a_422_naming_it(vae, smiles, message):
    err = refusal(encode_route, vae, [smiles], True)
    assert message in err.message and "\n" not in err.message, err.message
    assert "with standardize on" not in err.message  # no hint once it was on


def test_neighbours_route_standardises_the_query(vae):
    request = NeighboursRequest(smiles="C[C@H](N)C(=O)O.Cl", n=10, radius=2.0, standardize=True)
    out = neighbours(vae, request, Context())
    assert out["query"] == "CC(N)C(=O)O" and out["standardized"] == {
        "input": "C[C@H](N)C(=O)O.Cl", "smiles": "CC(N)C(=O)O",
        "changes": ["kept the largest fragment (dropped 'Cl')", "removed stereo (1 centre)"]}
    plain = neighbours(vae, NeighboursRequest(smiles="CC(N)C(=O)O", n=10, radius=2.0), Context())
    assert plain == {"query": "CC(N)C(=O)O", "neighbours": out["neighbours"]}  # no standardized key
    err = refusal(neighbours, vae, NeighboursRequest(smiles="C[C@H](N)C(=O)O.Cl"), Context())
    assert err.message.startswith("smiles 'C[C@H](N)C(=O)O.Cl': tokens '[C@H]', '.' never occurred")


def test_a_model_with_stereo_or_isotope_tokens_keeps_them():
    plain = SmilesTokenizer.build(MOLECULES)
    assert not plain.has_stereo and not plain.has_isotopes
    tok = SmilesTokenizer.build([*MOLECULES, "C[C@H](N)C(=O)O", "F/C=C/F", "[13CH3]O"])
    assert tok.has_stereo and tok.has_isotopes
    assert standardize_for(tok, "[13CH3][C@H](N)C(=O)O.Cl") == (
        "[13CH3][C@H](N)C(=O)O", ["kept the largest fragment (dropped 'Cl')"])
    assert standardize_for(plain, "[13CH3][C@H](N)C(=O)O.Cl")[0] == "CC(N)C(=O)O"


def test_encode_and_neighbours_commands_standardise_and_say_so(vae, tmp_path, capsys):
    ckpt = str(tmp_path / "vae")
    out = run(["encode", "--checkpoint", ckpt, "CC(=O)[O-].[Na+]", "OCC", "--standardize"])
    printed = capsys.readouterr().out
    lines = [json.loads(x) for x in printed.splitlines() if x.startswith("{")]
    assert [(x["input"], x["smiles"], x["changes"]) for x in lines] == [
        ("CC(=O)[O-].[Na+]", "CC(=O)O", ["kept the largest fragment (dropped '[Na+]')", "neutralised charges"]),
        ("OCC", "CCO", [])]
    assert [x["latent"] for x in lines] == out["latents"] and len(lines[0]["latent"]) == 4
    assert ("standardised 'CC(=O)[O-].[Na+]' to 'CC(=O)O': kept the largest fragment (dropped '[Na+]'); "
            "neutralised charges") in printed
    run(["neighbours", "--checkpoint", ckpt, "[2H]C([2H])([2H])O", "--n", "5", "--radius", "2", "--standardize"])
    printed = capsys.readouterr().out
    assert "standardised '[2H]C([2H])([2H])O' to 'CO': removed isotope labels (3 atoms)" in printed
    assert "distinct molecules around 'CO'" in printed


@pytest.mark.parametrize("argv, message", [
    (["encode", "CC(=O)[O-].[Na+]"], "smiles[0] 'CC(=O)[O-].[Na+]': tokens '[O-]', '.', '[Na+]' never occurred"),
    (["encode", "C1CC", "--standardize"], "smiles[0] 'C1CC' is not a valid molecule: SMILES Parse Error"),
    (["encode", "--standardize", "C[N+](C)(C)C"], "token '[N+]' never occurred in the training molecules"),
    (["encode"], "give one or more SMILES"),
    (["neighbours", "N.N.Cl[Pt]Cl", "--standardize"], "smiles 'N.N.Cl[Pt]Cl': tokens '[Cl]', '[Pt]' never"),
    (["neighbours", "CCO", "--n", "0"], "--n: Input should be greater than or equal to 1"),
    (["neighbours", "CCO", "--radius", "11"], "--radius: Input should be less than or equal to 10"),
    (["optimize", "--budget", "5"], "--budget: Input should be greater than or equal to 16"),
    (["optimize", "--objective", "qed=high"], "objective: the weight of 'qed' is 'high', not a number"),
    (["optimize", "--start", "[Pt]"], "start '[Pt]': token '[Pt]' never occurred"),
])
def test_molecule_commands_refuse_in_one_line(vae, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main([argv[0], "--checkpoint", str(tmp_path / "vae"), *argv[1:]])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.startswith("seqlab: error: ") and message in err and "\n" not in err, err


# ---- latent-space optimisation ---------------------------------------------------------------------

def test_optimize_returns_the_best_distinct_valid_molecules_it_decoded(vae):
    out = vae.optimize({"qed": 1.0}, budget=160, population=32, n=5, seed=1)
    assert out["decoded"] == 160 and 0 <= out["valid"] <= 160 and out["counted"] >= len(out["molecules"])
    mols = out["molecules"]
    assert mols and len({m["smiles"] for m in mols}) == len(mols) <= 5
    for m in mols:  # each scored as RDKit scores it now
        assert chem.canonical(m["smiles"]) == m["smiles"]
        props = chem.properties(m["smiles"])
        assert m["properties"] == pytest.approx(props, abs=1e-5) and m["score"] == pytest.approx(props["qed"], abs=1e-5)
    assert [m["score"] for m in mols] == sorted((m["score"] for m in mols), reverse=True)
    assert vae.optimize({"qed": 1.0}, budget=160, population=32, n=5, seed=1) == out  # the same seed, the same search
    # a weighted sum weighs both properties
    both = vae.optimize({"qed": 1.0, "logp": -0.5}, budget=64, n=3, seed=1)["molecules"]
    for m in both:
        assert m["score"] == pytest.approx(m["properties"]["qed"] - 0.5 * m["properties"]["logp"], abs=1e-5)


def test_optimize_from_a_start_keeps_to_its_similarity_and_leaves_it_out(vae):
    out = vae.optimize({"qed": 1.0}, start="c1ccccc1O", min_similarity=0.2, budget=128, n=10, seed=0)
    for m in out["molecules"]:
        assert m["smiles"] != "Oc1ccccc1" and m["similarity"] >= 0.2
        assert m["similarity"] == pytest.approx(chem.tanimoto("c1ccccc1O", m["smiles"]), abs=1e-4)
    # the baseline draws every point from the prior, whatever the start
    rand = vae.optimize({"qed": 1.0}, budget=64, n=100, seed=0, method="random")
    assert rand["decoded"] == 64 and all(m["similarity"] is None for m in rand["molecules"])
    with pytest.raises(SeqlabError, match="method must be cem or random"):
        vae.optimize({"qed": 1.0}, method="grid")


def test_optimize_route_and_command(vae, tmp_path, capsys):
    ctx = Context(key="toy", max_items=8)
    out = optimize(vae, OptimizeRequest(objective="qed=1,logp=0.1", start="OCC", budget=64, n=3, svg=True), ctx)
    assert out["objective"] == {"qed": 1.0, "logp": 0.1} and out["start"] == "CCO" and out["decoded"] == 64
    assert 0 <= out["valid_fraction"] <= 1 and all(m["svg"].lstrip().startswith("<") for m in out["molecules"])
    for request, status, message in [
        (OptimizeRequest(objective="sa"), 422, "unknown property 'sa'; choose from qed, logp"),
        (OptimizeRequest(start="C1CC"), 422, "start 'C1CC' is not a valid molecule"),
        (OptimizeRequest(start="CCBr"), 422, "token 'Br' never occurred"),
        (OptimizeRequest(min_similarity=0.5), 422, "min_similarity needs a start molecule"),
    ]:
        with pytest.raises((BadInput, SeqlabError)) as err:
            optimize(vae, request, ctx)
        assert message in str(getattr(err.value, "message", err.value)), err.value
        assert getattr(err.value, "status", 422) == status
    # the command answers as the route does, one JSON line a molecule
    got = run(["optimize", "--checkpoint", str(tmp_path / "vae"), "--start", "OCC", "--budget", "64", "--n", "3",
               "--objective", "qed=1,logp=0.1"])
    printed = capsys.readouterr()
    lines = [json.loads(x) for x in printed.out.splitlines() if x.startswith("{")]
    assert lines == got["molecules"] == [{k: v for k, v in m.items() if k != "svg"} for m in out["molecules"]]
    assert "best distinct molecules by 1*qed + 0.1*logp from 64 decoded points" in printed.err + printed.out


def test_the_vae_diagnosis_measures_what_it_says(vae):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "jobs" / "vae_diagnosis.py"
    spec = importlib.util.spec_from_file_location("vae_diagnosis", path)
    diagnosis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagnosis)
    test = MOLECULES
    row = diagnosis.diagnose(vae, test, n=40)
    mu, logvar = vae.posterior(test)
    assert np.allclose(mu, vae.encode_smiles(test)) and logvar.shape == mu.shape
    from seqlab.modules.losses import kl_terms

    kl = kl_terms(torch.from_numpy(mu), torch.from_numpy(logvar)).numpy()
    assert row["kl_per_dim"] == pytest.approx(kl.mean(0), abs=1e-4) and row["kl_nats"] == pytest.approx(kl.sum(1).mean())
    assert row["active_units"] == int((mu.var(0) > 0.01).sum()) and row["latent"] == 4
    assert row["reconstruction"] == chem.reconstruction(test, vae.decode(mu))
    shares = [v for k, v in row.items() if k.startswith(("valid_", "reconstruction"))]
    assert len(shares) == 8 and all(0 <= v <= 1 for v in shares)


# ---- --representation selfies: SMILES in and out, SELFIES symbols inside ----------------------------

SELFIES_ALPHABET = "[=Branch1] [=C] [=N] [=O] [Branch1] [C] [Cl] [N] [O] [Ring1]"  # the symbols of MOLECULES


@pytest.fixture
def selfies_vae(tmp_path):
    return MoleculeGenerator(save(tmp_path / "svae", "smiles-vae", SelfiesTokenizer, hidden=16, latent=4, embed_dim=8))


def test_a_selfies_model_samples_and_decodes_smiles(selfies_vae):
    assert selfies_vae.tokenizer.kind == "selfies" and " ".join(selfies_vae.tokenizer.alphabet) == SELFIES_ALPHABET
    samples = selfies_vae.sample(50, seed=1)
    assert samples == selfies_vae.sample(50, seed=1) and not any("[" in s for s in samples)  # SMILES, not symbols
    assert all(chem.canonical(s) is not None for s in samples if s)
    z = selfies_vae.encode_smiles(["CCO", "c1ccccc1O"])
    decoded = selfies_vae.decode(z)
    assert z.shape == (2, 4) and all(chem.canonical(s) is not None for s in decoded if s)
    for m in selfies_vae.neighbours("CCO", n=20, radius=2.0):
        assert chem.canonical(m["smiles"]) == m["smiles"] != "CCO"


def test_a_selfies_model_reads_smiles_and_names_the_symbols_it_never_saw(selfies_vae):
    out = encode_route(selfies_vae, ["OCC", "CC(=O)[O-].[Na+]"], standardize=True)
    assert out["canonical"] == ["CCO", "CC(=O)O"] and len(out["latents"]) == 2
    err = refusal(encode_route, selfies_vae, ["CCBr"])
    assert err.message == ("smiles[0] 'CCBr': token '[Br]' never occurred in the training molecules, so the model "
                           f"cannot encode it (the model's alphabet: {SELFIES_ALPHABET})")
    err = refusal(encode_route, selfies_vae, ["C[C@H](N)C(=O)O"])
    assert "token '[C@H1]' never occurred" in err.message and "it would read 'CC(N)C(=O)O'" in err.message
    err = refusal(encode_route, selfies_vae, ["F[I](F)(F)(F)F"], True)
    assert err.message.startswith("smiles[0] 'F[I](F)(F)(F)F': SELFIES cannot write SMILES 'FI(F)(F)(F)F': input "
                                  "violates the currently-set semantic constraints") and "\n" not in err.message
    err = refusal(encode_route, selfies_vae, ["C" * 22])
    assert err.message == f"smiles[0] {'C' * 22!r}: it has 22 tokens; the model reads at most 20"
    with pytest.raises(SeqlabError, match="token '\\[Br\\]' never occurred"):
        selfies_vae.encode_smiles(["CCBr"])


@pytest.mark.parametrize("tokenizer", [SmilesTokenizer, SelfiesTokenizer])
def test_novelty_of_the_epoch_samples_is_against_the_training_molecules(tokenizer):
    tok = tokenizer.build(MOLECULES)
    task = MoleculeGeneration()
    split = task.encode_frame(tok, pd.DataFrame({"text": MOLECULES}), np.zeros(len(MOLECULES), np.int64), max_len=20)
    known = set(spelled_split(tok, split))
    assert known == {tok.spell(m) for m in MOLECULES}  # SMILES as stored, or their SELFIES: nothing decoded
    samples = ["OCC", "NCC", "c1ccccc1", "C1=CC=CC=C1", "not a molecule"]  # ethanol and ethylamine are known
    assert chem.novelty(samples, known, key=tok.spell) == chem.novelty(samples, set(MOLECULES)) == 1 / 3  # benzene
    torch.manual_seed(0)
    model = build_model("smiles-rnn", vocab_size=len(tok), num_classes=1, max_len=20, hidden=16, embed_dim=8)
    scores = task.sampler(tok, split, 30)(model, 0)
    assert set(scores) == {"valid", "unique", "novelty", "chem_score"} and 0 <= scores["novelty"] <= 1
