"""Generative models of SMILES strings (write-up 004 and its stated next step).

All three share one interface, used by the ``molecule`` task (:mod:`seqlab.tasks.molecule`), sampling,
and Serve. Ids follow :class:`seqlab.tokenizers.smiles.SmilesTokenizer` (or, with ``--representation
selfies``, :class:`seqlab.tokenizers.selfies.SelfiesTokenizer`'s SELFIES symbols): ``<pad>``=0,
``<unk>``=1, ``<bos>``=2, ``<eos>``=3; a training row is ``<bos> tokens <eos>``.

    out = model(tokens, lengths)     # {"logits": (b, t-1, vocab) predicting tokens[:, 1:],
                                     #  "mu", "logvar": (b, latent) or None, "beta": () KL weight}
    z = model.encode(tokens, lengths)[0]                   # (b, latent) posterior means
    ids = model.generate(z, temperature=..., generator=g)  # (b, max_len) ids, <eos>-terminated
    z = model.prior(n, generator=g)                        # latents to sample from

- :class:`DenseAE`: the write-up's dense autoencoder on one-hot SMILES (widths 32, 14, latent 7).
  It is not variational; its prior is a Gaussian fitted to the training molecules' codes.
- :class:`SmilesVAE`: GRU encoder and decoder with teacher forcing, the latent joined to every
  decoder input, KL annealing and free bits against posterior collapse (MOSES' VAE, smaller).
- :class:`CharRNN`: a SMILES language model without latent (the MOSES CharRNN baseline).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def pack(x: torch.Tensor, lengths: torch.Tensor) -> nn.utils.rnn.PackedSequence:
    return nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)


def sample_step(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """(b, vocab) logits -> (b,) ids; temperature 0 is greedy. Pad, unk and bos are never drawn."""
    logits = logits.float().clone()
    logits[:, [PAD_ID, UNK_ID, BOS_ID]] = float("-inf")
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.no_grad()
def autoregress(step, b: int, steps: int, *, temperature: float, generator: torch.Generator | None,
                device: torch.device) -> torch.Tensor:
    """(b, <= steps) ids drawn one at a time from ``<bos>``; ``step(tokens (b, 1), state) -> (logits
    (b, vocab), state)``. Stops once every row has written ``<eos>``."""
    token = torch.full((b, 1), BOS_ID, dtype=torch.long, device=device)
    out, state = [], None
    done = torch.zeros(b, dtype=torch.bool, device=device)
    for _ in range(steps):
        logits, state = step(token, state)
        nxt = sample_step(logits, temperature, generator).masked_fill(done, PAD_ID)
        out.append(nxt)
        done |= nxt == EOS_ID
        if done.all():
            break
        token = nxt[:, None]
    return until_eos(torch.stack(out, 1))


def until_eos(ids: torch.Tensor) -> torch.Tensor:
    """Set every id after a row's first ``<eos>`` to padding."""
    ended = (ids == EOS_ID).long().cumsum(1) - (ids == EOS_ID).long()
    return ids.masked_fill(ended > 0, PAD_ID)


class KLSchedule(nn.Module):
    """KL weight rising linearly from 0 to ``beta`` over ``anneal_steps`` training steps.

    The step count is a buffer: it travels with checkpoints (a resumed run keeps its place on the
    schedule) and DDP broadcasts rank 0's, so all ranks agree.
    """

    def __init__(self, beta: float, anneal_steps: int):
        super().__init__()
        self.beta, self.anneal_steps = beta, anneal_steps
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, training: bool) -> torch.Tensor:
        if training:
            self.step += 1
        frac = (self.step.float() / max(self.anneal_steps, 1)).clamp(max=1.0)
        return self.beta * frac


class SmilesVAE(nn.Module):
    """Sequence VAE on SMILES tokens.

    Encoder: embedding -> GRU (``hidden``) -> last state -> mu, logvar (``latent``).
    Decoder: GRU (``hidden``) whose initial state is a projection of z and whose every input is
    [token embedding; z], teacher-forced in training. ``word_dropout`` replaces a share of the
    decoder's input tokens by ``<unk>``, so it must lean on z (Bowman et al. 2016).
    """

    def __init__(self, *, vocab_size: int, num_classes: int = 1, max_len: int = 100, embed_dim: int = 64,
                 hidden: int = 256, latent: int = 64, dropout: float = 0.1, word_dropout: float = 0.1,
                 beta: float = 0.1, anneal_steps: int = 3000, free_bits: float = 0.05):
        super().__init__()
        self.vocab_size, self.max_len, self.latent = vocab_size, max_len, latent
        self.word_dropout, self.free_bits = word_dropout, free_bits
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.encoder = nn.GRU(embed_dim, hidden, batch_first=True)
        self.to_stats = nn.Linear(hidden, 2 * latent)
        self.to_h0 = nn.Linear(latent, hidden)
        self.decoder = nn.GRU(embed_dim + latent, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)
        self.kl = KLSchedule(beta, anneal_steps)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, h = self.encoder(pack(self.embed(tokens), lengths))
        mu, logvar = self.to_stats(h[-1]).chunk(2, dim=-1)
        return mu, logvar.clamp(-10, 10)

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent, generator=generator, device=self.head.weight.device)

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        """(1, b, hidden) decoder state before ``<bos>``, from z (b, latent)."""
        return torch.tanh(self.to_h0(z))[None]

    def decode(self, inputs: torch.Tensor, z: torch.Tensor, h: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (b, t, vocab) after each of ``inputs`` (b, t), run on from ``h`` (``None``: from z), and the state."""
        x = self.dropout(self.embed(inputs))
        x = torch.cat([x, z[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        h = self.initial_state(z) if h is None else h
        out, h = self.decoder(x, h)
        return self.head(self.dropout(out)), h

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict:
        mu, logvar = self.encode(tokens, lengths)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        inputs = tokens[:, :-1]
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(inputs.shape, device=inputs.device) < self.word_dropout) & (inputs > BOS_ID)
            inputs = inputs.masked_fill(drop, UNK_ID)
        logits, _ = self.decode(inputs, z)
        return {"logits": logits, "mu": mu, "logvar": logvar, "beta": self.kl(self.training),
                "free_bits": self.free_bits}

    @torch.no_grad()
    def generate(self, z: torch.Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None,
                 max_len: int | None = None) -> torch.Tensor:
        def step(token, h):
            logits, h = self.decode(token, z, h)
            return logits[:, -1], h

        return autoregress(step, len(z), max_len or self.max_len, temperature=temperature, generator=generator,
                           device=z.device)


class CharRNN(nn.Module):
    """SMILES language model: embedding -> ``num_layers`` LSTMs -> next token (MOSES CharRNN).

    No latent: ``encode`` is refused and ``prior`` gives empty codes, so sampling is plain
    ancestral sampling from ``<bos>``.
    """

    latent = 0

    def __init__(self, *, vocab_size: int, num_classes: int = 1, max_len: int = 100, embed_dim: int = 64,
                 hidden: int = 256, num_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor):
        raise ValueError("a CharRNN has no latent space to encode into; use a VAE (smiles-vae) for that")

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.zeros(n, 0, device=self.head.weight.device)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict:
        out, _ = self.lstm(self.dropout(self.embed(tokens[:, :-1])))
        return {"logits": self.head(self.dropout(out)), "mu": None, "logvar": None}

    def step(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits (b, t, vocab) after each of ``tokens`` (b, t), run on from ``state`` (``None``: zeros), and
        the new ``(h, c)``."""
        out, state = self.lstm(self.embed(tokens), state)
        return self.head(out), state

    @torch.no_grad()
    def generate(self, z: torch.Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None,
                 max_len: int | None = None) -> torch.Tensor:
        def step(token, state):
            logits, state = self.step(token, state)
            return logits[:, -1], state

        return autoregress(step, len(z), max_len or self.max_len, temperature=temperature, generator=generator,
                           device=z.device)


class DenseAE(nn.Module):
    """Write-up 004's autoencoder: flattened one-hot SMILES -> dense 32 -> 14 -> latent 7 -> 14 -> 32
    -> a token distribution per position (``max_len + 1`` positions: the tokens and ``<eos>``).

    ``hidden`` is the outer width (32), ``hidden2`` the inner (14). The write-up's input was 63
    one-hot values; here every position is one-hot over the vocabulary. Being no VAE, it samples
    from a Gaussian fitted to the codes of the training molecules (running mean and std).
    """

    def __init__(self, *, vocab_size: int, num_classes: int = 1, max_len: int = 100, hidden: int = 32,
                 hidden2: int = 14, latent: int = 7, dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.max_len, self.latent = vocab_size, max_len, latent
        self.positions = max_len + 1
        width = self.positions * vocab_size
        self.encoder = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, hidden2), nn.ReLU(), nn.Linear(hidden2, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden2), nn.ReLU(), nn.Linear(hidden2, hidden), nn.ReLU(),
                                     nn.Dropout(dropout), nn.Linear(hidden, width))
        self.register_buffer("code_mean", torch.zeros(latent))
        self.register_buffer("code_std", torch.ones(latent))

    def _one_hot(self, tokens: torch.Tensor) -> torch.Tensor:
        body = tokens[:, 1 : 1 + self.positions]  # drop <bos>; <eos> is a position like any token
        body = F.pad(body, (0, self.positions - body.shape[1]))
        return F.one_hot(body, self.vocab_size).float().flatten(1)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor):
        return self.encoder(self._one_hot(tokens)), None

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(n, self.latent, generator=generator, device=self.code_mean.device)
        return self.code_mean + eps * self.code_std

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict:
        z, _ = self.encode(tokens, lengths)
        if self.training:  # running statistics of the codes: the prior to sample from
            with torch.no_grad():
                self.code_mean.lerp_(z.mean(0), 0.01)
                self.code_std.lerp_(z.std(0) if len(z) > 1 else self.code_std, 0.01)
        return {"logits": self.decode(z)[:, : tokens.shape[1] - 1], "mu": None, "logvar": None}

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(b, max_len + 1, vocab) logits of each position's token, from codes z (b, latent)."""
        return self.decoder(z).unflatten(-1, (self.positions, self.vocab_size))

    @torch.no_grad()
    def generate(self, z: torch.Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None,
                 max_len: int | None = None) -> torch.Tensor:
        logits = self.decode(z)
        steps = [sample_step(logits[:, i], temperature, generator) for i in range(self.positions)]
        return until_eos(torch.stack(steps, 1))


def decode_ids(tokenizer, ids: torch.Tensor) -> list[str]:
    return [tokenizer.decode(row) for row in ids.tolist()]


@torch.no_grad()
def sample_smiles(model: nn.Module, tokenizer, *, n: int, seed: int = 0, temperature: float = 1.0,
                  z: torch.Tensor | None = None, batch_size: int = 512) -> list[str]:
    """``n`` SMILES decoded from the prior (or from the given latents ``z``), reproducibly for ``seed``
    (the tokenizer's ``decode`` makes each a SMILES, a SELFIES tokenizer's too)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    z = model.prior(n, generator=g) if z is None else z.to(device)
    out = [s for i in range(0, len(z), batch_size)
           for s in decode_ids(tokenizer, model.generate(z[i : i + batch_size], temperature=temperature, generator=g))]
    model.train(was_training)
    return out
