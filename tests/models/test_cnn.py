import pytest
import torch
import torch.nn.functional as F
from conftest import batch
from safetensors.torch import load_file, save_file

from seqlab.models.cnn import CNNClassifier


def small(**kwargs):
    torch.manual_seed(0)
    args = dict(vocab_size=50, num_classes=4, embed_dim=8, filters=16, kernel_size=5, blocks=3, pool=2,
                head_dim=16)
    return CNNClassifier(**{**args, **kwargs})


@pytest.mark.parametrize("kernel_size,pool", [(5, 2), (3, 3), (5, 1)])
def test_shapes_and_padding_does_not_change_outputs(kernel_size, pool):
    model = small(kernel_size=kernel_size, pool=pool).eval()
    lengths = [1, 3, 17, 40]
    tokens, lens = batch(lengths)
    logits = model(tokens, lens)
    assert logits.shape == (4, 4) and torch.isfinite(logits).all()
    more_padding, _ = batch(lengths, pad_to=57)
    assert torch.allclose(model(more_padding, lens), logits, atol=1e-5)
    # each row alone, without any padding, gives the same answer as inside the batch
    for i, n in enumerate(lengths):
        alone = model(tokens[i : i + 1, :n], lens[i : i + 1])
        assert torch.allclose(alone, logits[i : i + 1], atol=1e-5), f"row of length {n}"


def test_padding_token_embeddings_are_ignored():
    # the trainer copies arbitrary vectors into embed.weight; a nonzero row 0 must not leak in
    model = small().eval()
    tokens, lens = batch([2, 9], pad_to=30)
    before = model(tokens, lens)
    with torch.no_grad():
        model.embed.weight[0] = 5.0
    assert torch.allclose(model(tokens, lens), before, atol=1e-5)


def test_one_step_lowers_the_loss():
    model = small(num_classes=3, dropout=0.0)
    tokens, lengths = batch([6, 4, 20, 1])
    labels = torch.tensor([0, 1, 2, 1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = F.cross_entropy(model(tokens, lengths), labels)
    before.backward()
    opt.step()
    after = F.cross_entropy(model(tokens, lengths), labels)
    assert after < before


def test_frozen_embeddings_stay_unchanged():
    model = small(freeze_embeddings=True, spatial_dropout=0.2)
    assert not model.embed.weight.requires_grad
    embed = model.embed.weight.detach().clone()
    others = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("embed.")}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)  # decay must not touch it either
    tokens, lengths = batch([6, 4, 8, 5])
    F.cross_entropy(model(tokens, lengths), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert torch.equal(model.embed.weight, embed)
    assert all(not torch.equal(p, others[n]) for n, p in model.named_parameters() if n in others)


def test_save_load_gives_the_same_outputs(tmp_path):
    kwargs = dict(spatial_dropout=0.1, freeze_embeddings=True)
    model = small(**kwargs).eval()
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    torch.manual_seed(1)  # other initial weights: the load must overwrite all of them
    loaded = CNNClassifier(vocab_size=50, num_classes=4, embed_dim=8, filters=16, head_dim=16, **kwargs).eval()
    loaded.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    tokens, lengths = batch([4, 2, 11])
    assert torch.equal(loaded(tokens, lengths), model(tokens, lengths))
    assert not loaded.embed.weight.requires_grad


def test_default_sizes_follow_the_write_up():
    model = CNNClassifier(vocab_size=100, num_classes=5)
    convs = [b.conv for b in model.blocks]
    assert model.embed.weight.shape == (100, 300) and model.embed.padding_idx == 0
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [(300, 128, 5)] + [(128, 128, 5)] * 2
    assert [m.out_features for m in model.head if isinstance(m, torch.nn.Linear)] == [128, 5]
