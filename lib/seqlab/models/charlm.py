"""Character-level LSTM text generator shaped like the write-up's.

One-hot characters -> LSTM(128) -> softmax over the character set, sampled with a "diversity"
(temperature) of 0.5. Trained either once per category, or once for all with the category as an
extra input (``conditional=True``). Ids follow :class:`seqlab.tokenizers.chars.CharTokenizer`:
``<pad>``=0, ``<unk>``=1, ``<bos>``=2, ``<eos>``=3.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, b, hidden)


class CharLSTM(nn.Module):
    """Next-character model: ``forward(tokens, lengths, category)`` gives logits (b, t, vocab_size).

    ``embed_dim=0`` feeds one-hot characters (as the write-up does), ``embed_dim>0`` a learned
    embedding. With ``conditional=True`` a learned category vector (``category_dim``) joins every
    input step and ``category`` (b,) is required; otherwise ``num_classes`` and ``category`` are unused.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 0,
        hidden: int = 128,
        dropout: float = 0.0,
        num_layers: int = 1,
        conditional: bool = False,
        category_dim: int = 16,
    ):
        super().__init__()
        if conditional and num_classes < 1:
            raise ValueError(f"a conditional model needs num_classes >= 1, got {num_classes}")
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.conditional = conditional
        if embed_dim > 0:
            self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
            in_dim = embed_dim
        else:
            # One-hot as a row lookup in a fixed identity matrix: one gather instead of building
            # F.one_hot (int64, then a cast) on every call. Not persistent: it is no weight, and
            # checkpoints stay the same size as the model's real parameters.
            self.embed = None
            self.register_buffer("eye", torch.eye(vocab_size), persistent=False)
            in_dim = vocab_size
        if conditional:
            # The category joins every step rather than only seeding the initial state: a state
            # set once fades over a few hundred characters, while a per-step input keeps the
            # condition equally in reach at every step (as in Ficler & Goldberg 2017, "Controlling
            # Linguistic Style Aspects in Neural Language Generation"). It costs one
            # (category_dim x 4*hidden) block more of input weights.
            self.category_embed = nn.Embedding(num_classes, category_dim)
            in_dim += category_dim
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def _inputs(self, tokens: torch.Tensor, category: torch.Tensor | None) -> torch.Tensor:
        # tokens: (b, t) int64 -> (b, t, in_dim)
        x = F.embedding(tokens, self.eye) if self.embed is None else self.embed(tokens)
        if self.conditional:
            if category is None:
                raise ValueError("a conditional CharLSTM needs `category` (b,)")
            c = self.category_embed(category.to(tokens.device))  # (b, category_dim)
            x = torch.cat([x, c[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        return x

    def step(self, tokens: torch.Tensor, category: torch.Tensor | None = None, state: State | None = None
             ) -> tuple[torch.Tensor, State]:
        """Logits (b, t, vocab_size) for ``tokens`` (b, t) run on from ``state``, and the new state.

        ``state`` is the ``(h, c)`` a previous call returned (``None``: zeros), so a text can be
        fed in pieces, as sampling does one character at a time.
        """
        x = self._inputs(tokens, category)  # (b, t, in_dim)
        # cuDNN wants its weights in one block; after DDP broadcast/replication they may not be
        self.lstm.flatten_parameters()
        out, state = self.lstm(x, state)  # out: (b, t, hidden)
        return self.head(self.dropout(out)), state

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None,
                category: torch.Tensor | None = None, state: State | None = None) -> torch.Tensor:
        # tokens: (b, t) int64 right-padded with <pad>=0; lengths: (b,) int64.
        # A forward-only LSTM's output at step i never sees steps > i, so running over the right
        # padding is exact without packing (and faster on CPU); the logits at padded positions are
        # junk that the loss skips (their targets are -100). ``lengths`` is therefore not needed
        # here; it stays in the signature that every seqlab model shares.
        return self.step(tokens, category, state)[0]  # (b, t, vocab_size)


def sample(model: CharLSTM, tokenizer, *, n: int = 1, length: int = 300, temperature: float = 0.5,
           prompt: str = "", category: int | None = None, seed: int = 0, device="cpu") -> list[str]:
    """``n`` texts, each ``prompt`` followed by at most ``length`` sampled characters: what
    :func:`stream` yields, joined."""
    texts = [prompt] * n
    for chars in stream(model, tokenizer, n=n, length=length, temperature=temperature, prompt=prompt,
                        category=category, seed=seed, device=device):
        texts = [t + c for t, c in zip(texts, chars)]
    return texts


@torch.no_grad()  # on a generator function: around each step it takes
def stream(model: CharLSTM, tokenizer, *, n: int = 1, length: int = 300, temperature: float = 0.5,
           prompt: str = "", category: int | None = None, seed: int = 0, device="cpu") -> Iterator[list[str]]:
    """Sample ``n`` texts together, yielding after each step the character each text gained (``""`` for
    a text that has ended, or drew ``<unk>``); at most ``length`` steps.

    Starts from ``<bos>`` + ``prompt`` and draws each next character from
    ``softmax(logits / temperature)`` (temperature <= 1e-3: the most likely one) until ``<eos>``.
    The same ``seed`` gives the same texts. Special tokens are dropped from the result, ``<unk>``
    included; prompt characters the tokenizer does not know are fed as ``<unk>``.
    ``category`` is required for a conditional model and ignored otherwise. Arguments are checked
    when the first step is asked for.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if n < 1 or length < 0:
        raise ValueError(f"need n >= 1 and length >= 0, got n={n}, length={length}")
    cat = None
    if model.conditional:
        if category is None:
            raise ValueError("a conditional model needs `category`")
        if not 0 <= category < model.num_classes:
            raise ValueError(f"category must be in [0, {model.num_classes}), got {category}")
        cat = torch.full((n,), category, dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    try:
        gen = torch.Generator(device=device).manual_seed(seed)
        # encode() cuts to max_len; a prompt is fed whole, so map its characters directly
        start = [BOS_ID] + [tokenizer.index.get(ch, UNK_ID) for ch in prompt]
        tokens = torch.tensor(start, dtype=torch.long, device=device).expand(n, -1)  # (n, 1 + len(prompt))
        logits, state = model.step(tokens, cat)
        last = logits[:, -1].float()  # (n, V)
        # <pad> and <bos> are never targets, so never draw them
        banned = torch.zeros(last.shape[-1], dtype=torch.bool, device=device)
        banned[[PAD_ID, BOS_ID]] = True
        done = torch.zeros(n, dtype=torch.bool, device=device)
        for _ in range(length):
            last = last.masked_fill(banned, float("-inf"))
            if temperature <= 1e-3:
                nxt = last.argmax(dim=-1)  # (n,)
            else:
                probs = torch.softmax(last / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)  # (n,)
            nxt = nxt.masked_fill(done, EOS_ID)  # finished rows stay finished
            done |= nxt == EOS_ID
            yield [tokenizer.decode([i]) for i in nxt.tolist()]
            if bool(done.all()):
                break
            logits, state = model.step(nxt[:, None], cat, state)
            last = logits[:, -1].float()
    finally:
        model.train(was_training)
