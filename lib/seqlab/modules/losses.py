"""The training losses of the model families (each task picks its own, :mod:`seqlab.tasks`)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats per predicted character; targets of -100 (padding) are skipped.

    ``logits`` (b, t, V), ``targets`` (b, t) int64: for next-character prediction the targets are
    the tokens shifted left by one. Computed in fp32 whatever the logits' dtype.
    """
    flat_targets = targets.reshape(-1)
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), flat_targets,
                            ignore_index=-100, reduction="sum")
    # sum / count rather than reduction="mean": a batch with nothing to predict gives 0, not NaN
    return total / (flat_targets != -100).sum().clamp(min=1)



def l2_penalty(module: nn.Module, l2: float) -> torch.Tensor:
    """``l2 * sum(w^2)`` over weight matrices; biases and the word embeddings are left out (a
    pre-trained vector's norm is not a complexity to shrink)."""
    terms = [p.pow(2).sum() for n, p in module.named_parameters()
             if p.requires_grad and p.dim() > 1 and not n.startswith("embed.")]
    return l2 * torch.stack(terms).sum()



def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy; with class ``weight``, the weighted sum over the batch's size (not over its
    weights' sum, as torch's weighted mean): every step weighs alike, and balanced weights average 1."""
    if weight is None:
        return F.cross_entropy(logits.float(), labels)
    return F.cross_entropy(logits.float(), labels, weight=weight.to(logits.device), reduction="sum") / len(labels)


def cross_entropy(out: dict[str, torch.Tensor], labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The training loss of the entity models: cross-entropy plus the model's L2 term, if any."""
    loss = weighted_cross_entropy(out["logits"], labels, weight)
    return loss + out["penalty"] if "penalty" in out else loss



def kl_terms(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(b, latent) KL(q(z|x) || N(0, I)) per dimension."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)


def elbo_loss(out: dict, targets: torch.Tensor) -> torch.Tensor:
    """Negative ELBO per molecule: summed token cross-entropy + beta * KL with free bits.

    Free bits: each latent dimension's batch-mean KL counts at least ``free_bits`` nats, so the
    optimiser gains nothing by pushing a dimension's KL below it (Kingma et al. 2016).
    """
    logits = out["logits"]
    recon = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum")
    loss = recon / len(targets)
    if out.get("mu") is not None:
        kl = kl_terms(out["mu"].float(), out["logvar"].float()).mean(0)
        loss = loss + out["beta"] * kl.clamp(min=out["free_bits"]).sum()
    return loss
