"""Dropout of whole embedding channels."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class SpatialDropout(nn.Module):
    """Drops whole embedding channels for a sequence (Keras SpatialDropout1D)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (b, t, d); dropout2d on (b, d, t, 1) zeroes a channel over all time steps
        if not self.training or self.p == 0:
            return x
        return F.dropout2d(x.permute(0, 2, 1).unsqueeze(-1), self.p, True).squeeze(-1).permute(0, 2, 1)
