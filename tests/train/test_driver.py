"""The driver's data side without Ray: --representation selfies builds the SELFIES tokenizer."""

from seqlab import chem, tokenizers
from seqlab.config import DataConfig, ModelConfig, identity_of
from seqlab.train.driver import prepare, signature

MOLS = ["c1ccccc1", "CCO", "CCN", "CC(=O)O", "C[C@@H](N)C(=O)O", "Clc1ccccc1Br", "c1cc[nH]c1", "CCCCCCCC",
        "Cc1ccc(S(N)(=O)=O)cc1", "CCc1ccccc1", "c1ccncc1", "C1CCCCC1"]


def train_rows(prepared) -> list:
    split = prepared.splits["train"]
    return [split.ids[a:b] for a, b in zip(split.offsets[:-1], split.offsets[1:])]


def test_representation_selfies_trains_on_selfies_symbols_of_the_same_molecules(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQLAB_HOME", str(tmp_path / "home"))
    (tmp_path / "mols.smi").write_text("\n".join(MOLS) + "\n")
    data = DataConfig(dataset=str(tmp_path / "mols.smi"), max_len=40)
    plain_cfg, selfies_cfg = ModelConfig(model="smiles-rnn"), ModelConfig(model="smiles-rnn", representation="selfies")
    plain, selfies = prepare(data, plain_cfg), prepare(data, selfies_cfg)
    assert plain.tokenizer["kind"] == "smiles" and selfies.tokenizer["kind"] == "selfies"
    tok = tokenizers.from_dict(selfies.tokenizer)  # as a checkpoint's seqlab_tokenizer.json loads
    assert "[C]" in tok.vocab and selfies.vocab_size == len(tok)
    stored = [tokenizers.from_dict(plain.tokenizer).decode(r) for r in train_rows(plain)]  # canonical SMILES
    assert len(stored) > 5 and [chem.canonical(tok.decode(r)) for r in train_rows(selfies)] == stored
    # the option is part of what a run is; at its default it leaves the signature of earlier runs as it was
    assert signature(selfies, selfies_cfg) != signature(plain, plain_cfg)
    assert "representation" not in identity_of(plain_cfg) and identity_of(selfies_cfg)["representation"] == "selfies"
