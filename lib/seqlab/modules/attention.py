"""Attention pooling over a sequence's states."""

from __future__ import annotations

import torch


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of ``h`` (b, t, d) over the positions where ``mask`` (b, t) holds."""
    m = mask.to(h.dtype)[..., None]
    return (h * m).sum(1) / m.sum(1).clamp(min=1)



def attend(h: torch.Tensor, mask: torch.Tensor, query: torch.Tensor, w_a: torch.Tensor, b_a: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear attention of ``query`` over the states ``h`` (thesis, section 2.2.1):
    ``alpha_i = softmax_i(tanh(h_i W_a query + b_a))`` over the positions where ``mask`` holds.

    h: (b, t, d) states, mask: (b, t), query: (b, d) -> weights (b, t), pooled (b, d).
    """
    score = torch.tanh(torch.einsum("btd,de,be->bt", h, w_a, query) + b_a)
    weights = torch.softmax(score.masked_fill(~mask, float("-inf")), dim=-1)
    return weights, torch.einsum("bt,btd->bd", weights, h)
