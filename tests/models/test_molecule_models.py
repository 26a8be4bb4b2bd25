"""The SMILES generators: shapes, padding, the KL schedule and free bits, sampling, and learning."""

import numpy as np
import pytest
import torch

from seqlab.models import build_model
from seqlab.models.molecule import BOS_ID, EOS_ID, PAD_ID, until_eos
from seqlab.modules.losses import elbo_loss, kl_terms
from seqlab.tasks import make_task
from seqlab.tasks.encoding import EncodedSplit
from seqlab.tokenizers import ragged

VOCAB = 20
MODELS = ["smiles-vae", "smiles-rnn", "smiles-ae"]


def rows(lengths, seed=0):
    """``<bos> random tokens <eos>`` rows as an EncodedSplit."""
    g = np.random.default_rng(seed)
    seqs = [[BOS_ID, *g.integers(4, VOCAB, n).tolist(), EOS_ID] for n in lengths]
    ids, offsets = ragged(seqs)
    return EncodedSplit(ids, offsets, np.zeros(len(seqs), np.int64))


def small(name, **kw):
    return build_model(name, vocab_size=VOCAB, num_classes=1, max_len=12, **kw)


@pytest.mark.parametrize("name", MODELS)
def test_logits_predict_every_next_token(name):
    task = make_task("molecule", 1)
    split = rows([3, 7, 12])
    batch = task.collate(split, np.arange(3))
    out = task.forward(small(name).eval(), batch)
    assert out["logits"].shape == (3, 13, VOCAB)  # longest row: bos + 12 + eos -> 13 predictions
    assert batch["targets"].shape == (3, 13)
    assert (batch["targets"][0, 4:] == -100).all() and batch["targets"][0, 3] == EOS_ID
    loss = task.loss(out, batch)
    assert torch.isfinite(loss) and loss > 0


@pytest.mark.parametrize("name", ["smiles-vae", "smiles-rnn"])
def test_padding_does_not_change_a_row(name):
    """A row's logits and code are the same alone and next to a longer row (packed encoder, causal decoder)."""
    model = small(name).eval()
    task = make_task("molecule", 1)
    split = rows([4, 11])
    alone = task.forward(model, task.collate(split, np.array([0])))
    padded = task.forward(model, task.collate(split, np.array([0, 1])))
    n = alone["logits"].shape[1]
    torch.testing.assert_close(padded["logits"][0, :n], alone["logits"][0], atol=1e-5, rtol=1e-5)
    if name == "smiles-vae":
        torch.testing.assert_close(padded["mu"][0], alone["mu"][0], atol=1e-5, rtol=1e-5)


def test_kl_weight_anneals_and_travels_with_the_state():
    model = small("smiles-vae", beta=0.5, anneal_steps=4).train()
    task = make_task("molecule", 1)
    batch = task.collate(rows([5, 6]), np.arange(2))
    betas = [float(task.forward(model, batch)["beta"]) for _ in range(6)]
    assert betas == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5, 0.5])
    resumed = small("smiles-vae", beta=0.5, anneal_steps=4)
    resumed.load_state_dict(model.state_dict())
    assert int(resumed.kl.step) == 6
    model.eval()
    assert float(task.forward(model, batch)["beta"]) == 0.5 and int(model.kl.step) == 6  # eval does not count


def test_free_bits_floor_each_dimension():
    targets = torch.tensor([[5, EOS_ID]])
    logits = torch.zeros(1, 2, VOCAB)
    mu = torch.tensor([[0.0, 3.0]])  # dimension 0: KL 0 (charged 0.5), dimension 1: KL 4.5
    out = {"logits": logits, "mu": mu, "logvar": torch.zeros(1, 2), "beta": torch.tensor(1.0), "free_bits": 0.5}
    recon = 2 * np.log(VOCAB)
    assert float(elbo_loss(out, targets)) == pytest.approx(recon + 0.5 + 4.5, rel=1e-5)
    assert kl_terms(mu, torch.zeros(1, 2)).tolist() == [[0.0, 4.5]]


def test_until_eos_pads_after_the_first_end():
    ids = torch.tensor([[5, 6, EOS_ID, 7, EOS_ID], [5, 5, 5, 5, 5]])
    assert until_eos(ids).tolist() == [[5, 6, EOS_ID, PAD_ID, PAD_ID], [5, 5, 5, 5, 5]]


@pytest.mark.parametrize("name", MODELS)
def test_generate_is_reproducible_and_never_emits_specials(name):
    model = small(name).eval()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = model.generate(model.prior(8, generator=g1), generator=g1, temperature=1.0)
    b = model.generate(model.prior(8, generator=g2), generator=g2, temperature=1.0)
    assert torch.equal(a, b)
    assert a.shape[0] == 8 and a.shape[1] <= 13
    assert not ((a == BOS_ID) | (a == 1)).any()


def test_autoencoder_prior_follows_the_training_codes():
    model = small("smiles-ae").train()
    task = make_task("molecule", 1)
    batch = task.collate(rows([5] * 64), np.arange(64))
    for _ in range(300):
        task.forward(model, batch)
    z, _ = model.encode(batch["tokens"], batch["lengths"])
    torch.testing.assert_close(model.code_mean, z.mean(0).detach(), atol=0.05, rtol=0.05)
    assert model.prior(4).shape == (4, 7)


@pytest.mark.parametrize("name", MODELS)
def test_overfits_a_few_molecules(name):
    """Every model can learn 16 sequences. The CharRNN has no code to tell the rows apart, so it
    cannot know a row's first token (1 of 7 predictions): 0.8 for it, 0.9 for the others."""
    torch.manual_seed(0)
    task = make_task("molecule", 1)
    split = rows([6] * 16, seed=1)
    kw = {"beta": 0.01, "word_dropout": 0.0, "dropout": 0.0} if name == "smiles-vae" else {}
    if name == "smiles-ae":
        kw = {"hidden": 128, "hidden2": 64, "latent": 16}
    model = small(name, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = task.collate(split, np.arange(16))
    for _ in range(300):
        model.train()
        loss = task.loss(task.forward(model, batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    metrics = task.summarise(task.stats(task.forward(model, batch), batch))
    assert metrics["token_accuracy"] > (0.8 if name == "smiles-rnn" else 0.9), metrics
