"""1D-CNN text classifier shaped like the write-up's Keras model.

Embedding(vocab, 300) -> 3 x [Conv1D(128, 5, relu) -> MaxPooling1D(2)] -> GlobalMaxPooling1D
-> Dense(128, relu) -> Dropout(0.5) -> Dense(num_classes). The embedding may start from
pre-trained vectors (``vectors``, e.g. :func:`seqlab.modules.embeddings.embedding_matrix`) and may be
frozen.

Exact under padding: a row's logits depend only on its first ``length`` tokens, never on how
much right padding its batch has. Each block tracks every row's valid length; positions past it
are zeroed before each conv (so a 'valid' conv reads the row's own tokens and then zeros, as if
the row were alone) and set to -inf before the global max. A text shorter than the kernel is
zero-padded to the kernel size, so even a 1-token text gives one output per block.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from seqlab.modules.dropout import SpatialDropout
from seqlab.modules.embeddings import word_embedding


class ConvBlock(nn.Module):
    """Conv1d ('valid', as Keras' default) -> ReLU -> max-pool, carrying each row's valid length."""

    def __init__(self, *, in_dim: int, filters: int, kernel_size: int, pool: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.pool = pool
        self.conv = nn.Conv1d(in_dim, filters, kernel_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (b, c, t) with x[i, :, lengths[i]:] == 0; lengths: (b,) valid positions per row
        k = self.kernel_size
        if x.shape[-1] < k:
            # too short for one window: zero-pad the right, exactly what masking would give
            x = F.pad(x, (0, k - x.shape[-1]))
        # a row shorter than k counts as zero-padded to k: one window over its tokens and zeros
        lengths = lengths.clamp(min=k) - (k - 1)  # valid conv outputs per row, >= 1
        x = F.relu(self.conv(x))  # (b, filters, t - k + 1)
        x = x * _mask(lengths, x.shape[-1], x.dtype)[:, None, :]  # zero outputs that read padding
        # ceil_mode keeps a last, partial window: a row's final output is never dropped, and a
        # length-1 row stays length 1. Its missing partner is either a zeroed position or absent,
        # and after the ReLU every value is >= 0, so the zero never wins over a real value.
        if self.pool > 1:
            x = F.max_pool1d(x, self.pool, self.pool, ceil_mode=True)  # (b, filters, ceil(t' / pool))
            lengths = torch.div(lengths + self.pool - 1, self.pool, rounding_mode="floor")
        return x, lengths


class CNNClassifier(nn.Module):
    def __init__(
        self,
        *,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 300,
        filters: int = 128,
        kernel_size: int = 5,
        blocks: int = 3,
        pool: int = 2,
        dropout: float = 0.5,
        spatial_dropout: float = 0.0,
        head_dim: int = 128,
        freeze_embeddings: bool = False,
        vectors: torch.Tensor | None = None,
    ):
        super().__init__()
        if blocks < 1 or kernel_size < 1 or pool < 1 or filters < 1:
            raise ValueError(f"blocks, kernel_size, pool and filters must be >= 1; got blocks={blocks}, "
                             f"kernel_size={kernel_size}, pool={pool}, filters={filters}")
        # frozen pre-trained vectors stay as they are; the optimizer skips a parameter without grad
        self.embed = word_embedding(vocab_size, embed_dim, vectors=vectors, freeze=freeze_embeddings)
        self.spatial_dropout = SpatialDropout(spatial_dropout)
        self.blocks = nn.ModuleList(
            ConvBlock(in_dim=embed_dim if i == 0 else filters, filters=filters, kernel_size=kernel_size, pool=pool)
            for i in range(blocks)
        )
        self.head = nn.Sequential(
            nn.Linear(filters, head_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(head_dim, num_classes),
        )

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        # tokens: (b, t) int64 right-padded with 0; lengths: (b,) int64; extra: (b, t, e) added to the
        # word vectors (the entity models mark a mention with it)
        lengths = lengths.to(tokens.device)
        x = self.embed(tokens)
        x = self.spatial_dropout(x if extra is None else x + extra)  # (b, t, e)
        # padding rows of a pre-trained matrix are zero, but mask anyway: a caller may pass any values
        x = x * _mask(lengths, x.shape[1], x.dtype)[..., None]
        x = x.transpose(1, 2)  # (b, e, t): Conv1d wants channels first
        for block in self.blocks:
            x, lengths = block(x, lengths)  # (b, filters, t_i), lengths >= 1
        pad = ~_mask(lengths, x.shape[-1], dtype=torch.bool)  # (b, t_last)
        feat = x.masked_fill(pad[:, None, :], float("-inf")).amax(dim=-1)  # (b, filters) global max
        return self.head(feat)  # (b, num_classes) logits


def _mask(lengths: torch.Tensor, t: int, dtype: torch.dtype) -> torch.Tensor:
    """(b, t): 1 where position < length, else 0."""
    return (torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]).to(dtype)
