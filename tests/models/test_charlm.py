import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.models.charlm import CharLSTM, sample, stream
from seqlab.modules.losses import lm_loss
from seqlab.tokenizers.chars import CharTokenizer

V = 12


def batch(lengths, pad_to=None, seed=0):
    """Right-padded <bos> + random chars + <eos> rows, and their next-char targets (-100 at padding)."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths) if pad_to is None else pad_to
    tokens = torch.zeros(len(lengths), t, dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(4, V, (n,), generator=g)
        tokens[i, 0], tokens[i, n - 1] = 2, 3
    targets = torch.full_like(tokens, -100)
    for i, n in enumerate(lengths):
        targets[i, : n - 1] = tokens[i, 1:n]
    return tokens, torch.tensor(lengths), targets


def model(**kwargs):
    torch.manual_seed(0)
    kwargs = {"vocab_size": V, "num_classes": 3, "hidden": 16, "category_dim": 4, **kwargs}
    return CharLSTM(**kwargs)


@pytest.mark.parametrize("embed_dim", [0, 8])
@pytest.mark.parametrize("conditional", [False, True])
def test_shapes_and_padding_does_not_change_real_positions(embed_dim, conditional):
    m = model(embed_dim=embed_dim, conditional=conditional, num_layers=2, dropout=0.2).eval()
    tokens, lengths, targets = batch([5, 3, 7])
    category = torch.tensor([0, 2, 1]) if conditional else None
    logits = m(tokens, lengths, category)
    assert logits.shape == (3, 7, V)
    more, _, _ = batch([5, 3, 7], pad_to=12)
    logits_more = m(more, lengths, category)
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(logits_more[i, :n], logits[i, :n], atol=1e-5)
    # a row alone, without padding, gives the same logits as inside the batch
    alone = m(tokens[1:2, :3], lengths[1:2], None if category is None else category[1:2])
    assert torch.allclose(alone, logits[1:2, :3], atol=1e-5)
    # the loss only sees real positions
    real = targets != -100
    expected = F.cross_entropy(logits[real], targets[real])
    assert torch.allclose(lm_loss(logits, targets), expected, atol=1e-6)
    assert torch.allclose(lm_loss(logits_more, F.pad(targets, (0, 5), value=-100)), expected, atol=1e-5)


def test_step_in_pieces_equals_forward():
    m = model(conditional=True).eval()
    tokens, lengths, _ = batch([6, 6])
    category = torch.tensor([1, 0])
    first, state = m.step(tokens[:, :2], category)
    rest, _ = m.step(tokens[:, 2:], category, state)
    assert torch.allclose(torch.cat([first, rest], dim=1), m(tokens, lengths, category), atol=1e-5)


def test_conditional_needs_category_and_categories_change_the_output():
    m = model(conditional=True).eval()
    tokens, lengths, _ = batch([5, 5])
    with pytest.raises(ValueError):
        m(tokens, lengths)
    p0 = torch.softmax(m(tokens, lengths, torch.tensor([0, 0])), dim=-1)
    p1 = torch.softmax(m(tokens, lengths, torch.tensor([1, 1])), dim=-1)
    assert (p0 - p1).abs().max() > 1e-3


def test_one_step_lowers_the_loss():
    m = model(embed_dim=0)
    tokens, lengths, targets = batch([6, 4, 8, 5])
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    before = lm_loss(m(tokens, lengths), targets)
    assert abs(before.item() - math.log(V)) < 0.3  # an untrained model is near uniform
    before.backward()
    opt.step()
    assert lm_loss(m(tokens, lengths), targets) < before


def test_learns_a_repeated_pattern_and_samples_it():
    text = "abc" * 30
    tok = CharTokenizer.build([text])
    # three phases of the pattern, so the first character is not always the same
    x = torch.tensor([tok.encode(text[i : i + 60]) for i in range(3)])  # (3, 62)
    tokens, targets = x[:, :-1], x[:, 1:]
    torch.manual_seed(0)
    m = CharLSTM(vocab_size=len(tok), num_classes=1, hidden=32)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(300):
        loss = lm_loss(m(tokens, None), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # everything but the first character (one of three) and the <eos> (needs counting to 60) is certain
    inner = targets.clone()
    inner[:, 0] = inner[:, -1] = -100
    assert lm_loss(m(tokens, None), inner) < 0.1  # from ~1.9 untrained
    assert loss < 0.2
    out = sample(m, tok, n=2, length=30, temperature=0.01)
    assert all(len(s) == 30 and s in text for s in out)
    assert sample(m, tok, length=30, temperature=0.01, prompt="b") == ["b" + ("cab" * 10)]
    assert m.training  # sample() leaves the mode as it found it


def test_sample_seed_determinism_and_prompt():
    tok = CharTokenizer.build(["abcdefghijklmnopqrstuvwxyz "])
    torch.manual_seed(0)
    m = CharLSTM(vocab_size=len(tok), num_classes=1, hidden=16)
    a = sample(m, tok, n=3, length=20, temperature=1.0, seed=0)
    assert a == sample(m, tok, n=3, length=20, temperature=1.0, seed=0)
    assert a != sample(m, tok, n=3, length=20, temperature=1.0, seed=1)
    assert len(set(a)) > 1  # rows of one batch differ too
    assert all(len(s) <= 20 and not any(c in s for c in "<>") for s in a)
    # the prompt is the prefix, unknown characters (fed as <unk>) included
    for prompt in ["hello wor", "ÄÖ?"]:
        out = sample(m, tok, n=2, length=10, prompt=prompt, seed=3)
        assert all(s.startswith(prompt) and len(s) <= len(prompt) + 10 for s in out)
    assert sample(m, tok, length=0, prompt="ab") == ["ab"]
    with pytest.raises(ValueError):
        sample(m, tok, temperature=0.0)


def test_stream_yields_each_steps_characters_and_they_join_into_sample():
    tok = CharTokenizer.build(["abcdefghijklmnopqrstuvwxyz "])
    torch.manual_seed(0)
    m = CharLSTM(vocab_size=len(tok), num_classes=1, hidden=16)
    for kw in ({"n": 3, "length": 40, "temperature": 1.0, "seed": 2}, {"n": 1, "length": 25, "prompt": "the "},
               {"n": 2, "length": 30, "temperature": 1e-4}):
        steps = list(stream(m, tok, **kw))
        assert 1 <= len(steps) <= kw["length"] and all(len(chars) == kw["n"] for chars in steps)
        assert all(len(c) <= 1 for chars in steps for c in chars)  # one character a step, or none once ended
        joined = [kw.get("prompt", "") + "".join(chars[i] for chars in steps) for i in range(kw["n"])]
        assert joined == sample(m, tok, **kw)
        if len(steps) < kw["length"]:  # it stopped early: in its last step the last text ended too
            assert steps[-1] == [""] * kw["n"]
    steps = stream(m, tok, n=1, length=1000, temperature=1.0)
    next(steps)
    steps.close()  # a caller that stops reading: the model is left in the mode it had
    assert m.training


def test_sample_conditional():
    tok = CharTokenizer.build(["abcdefghijklmnopqrstuvwxyz "])
    torch.manual_seed(0)
    m = CharLSTM(vocab_size=len(tok), num_classes=2, hidden=16, conditional=True, category_dim=4)
    with pytest.raises(ValueError):
        sample(m, tok, length=5)
    with pytest.raises(ValueError):
        sample(m, tok, length=5, category=2)
    out = sample(m, tok, n=2, length=5, category=1, seed=0)
    assert out == sample(m, tok, n=2, length=5, category=1, seed=0)
    # a non-conditional model ignores the category
    plain = CharLSTM(vocab_size=len(tok), num_classes=2, hidden=16)
    assert sample(plain, tok, length=5, category=1) == sample(plain, tok, length=5)


@pytest.mark.parametrize("embed_dim", [0, 8])
def test_save_load_gives_the_same_logits(tmp_path, embed_dim):
    kwargs = {"embed_dim": embed_dim, "conditional": True, "dropout": 0.1}
    m = model(**kwargs).eval()
    torch.save(m.state_dict(), tmp_path / "m.pt")
    assert "eye" not in m.state_dict()  # the one-hot table is no weight
    torch.manual_seed(1)
    other = CharLSTM(vocab_size=V, num_classes=3, hidden=16, category_dim=4, **kwargs).eval()
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    tokens, lengths, _ = batch([5, 7])
    category = torch.tensor([2, 0])
    assert torch.equal(other(tokens, lengths, category), m(tokens, lengths, category))
