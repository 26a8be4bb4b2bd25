"""LSTM text classifier shaped like write-ups 001/002.

Embedding -> spatial dropout -> LSTM (packed, variable length) -> pooling -> dense head.
Seed 001: Embedding(8192, 256) -> SpatialDropout1D(0.3) -> LSTM(256) -> Dense(256, relu)
-> Dropout(0.3) -> Dense(5). ``hidden`` and ``dropout`` are the searched hyperparameters.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.modules.dropout import SpatialDropout
from seqlab.modules.embeddings import word_embedding


class LSTMClassifier(nn.Module):
    # pack even a forward-only LSTM's sequences (exact either way; jobs/bench_gpu.py compares the two)
    pack = False

    def __init__(
        self,
        *,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        hidden: int = 128,
        dropout: float = 0.3,
        spatial_dropout: float = 0.2,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: str = "max",
        head_dim: int = 256,
        hidden2: int = 0,
        freeze_embeddings: bool = False,
        vectors: torch.Tensor | None = None,
    ):
        super().__init__()
        if pooling not in ("max", "last"):
            raise ValueError(f"pooling must be 'max' or 'last', got {pooling!r}")
        self.pooling = pooling
        if hidden2 and bidirectional:
            raise ValueError("hidden2 (a second, narrower LSTM) needs bidirectional=False")
        self.embed = word_embedding(vocab_size, embed_dim, vectors=vectors, freeze=freeze_embeddings)
        self.spatial_dropout = SpatialDropout(spatial_dropout)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=num_layers, batch_first=True,
                            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        # seed 002 stacks LSTM(50) -> LSTM(20): a second LSTM of its own width over the first's states
        self.lstm2 = nn.LSTM(hidden, hidden2, batch_first=True) if hidden2 else None
        feat = hidden2 or hidden * (2 if bidirectional else 1)
        if head_dim:
            self.head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(feat, head_dim), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(head_dim, num_classes),
            )
        else:  # straight to the output layer, as seed 002's Dense(9, softmax)
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feat, num_classes))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        # tokens: (b, t) int64 right-padded with 0; lengths: (b,) int64; extra: (b, t, e) added to the
        # word vectors (the entity models mark a mention with it)
        x = self.embed(tokens)
        x = self.spatial_dropout(x if extra is None else x + extra)  # (b, t, e)
        # cuDNN wants its weights in one block; after DDP broadcast/replication they may not be
        self.lstm.flatten_parameters()
        if self.lstm.bidirectional or self.pack:
            # the backward direction must not read padding first: pack
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, (h, _) = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        else:
            # A forward-only LSTM's state at step i never sees steps > i, so running over the
            # right padding and masking it afterwards is exact. On CPU this is ~6x faster to train
            # than packing (oneDNN path); length-bucketed batches keep the padding small.
            out, _ = self.lstm(x)  # (b, t, hidden)
        if self.lstm2 is not None:
            self.lstm2.flatten_parameters()
            out, _ = self.lstm2(out)  # (b, t, hidden2)
        if self.pooling == "last":
            if self.lstm.bidirectional:
                feat = torch.cat([h[-2], h[-1]], dim=-1)  # final layer, both directions
            else:
                last = (lengths - 1).clamp(min=0).to(out.device)
                feat = out[torch.arange(out.shape[0], device=out.device), last]  # (b, hidden)
        else:
            pad = torch.arange(out.shape[1], device=out.device)[None, :] >= lengths.to(out.device)[:, None]
            feat = out.masked_fill(pad[..., None], float("-inf")).max(dim=1).values  # (b, feat)
        return self.head(feat)  # (b, num_classes) logits


def lstm_stacked(*, vocab_size: int, num_classes: int, embed_dim: int = 128, hidden: int = 50, hidden2: int = 20,
                 dropout: float = 0.2, spatial_dropout: float = 0.0, freeze_embeddings: bool = False,
                 vectors: torch.Tensor | None = None) -> LSTMClassifier:
    """Seed 002: Embedding -> LSTM(50) -> LSTM(20) -> Dense(classes); last state of the second LSTM."""
    return LSTMClassifier(vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                          hidden2=hidden2, dropout=dropout, spatial_dropout=spatial_dropout, pooling="last",
                          head_dim=0, freeze_embeddings=freeze_embeddings, vectors=vectors)
