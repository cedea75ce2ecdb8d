"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Reference: T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020 (arXiv:2002.05709), Algorithm 1 and Eq. (1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from topo.trainer.dist import gather_with_grad, get_rank
from topo.trainer.losses.checks import check_pair

__all__ = ["nt_xent_loss"]


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> Tensor:
    """SimCLR's NT-Xent loss over the ``2N`` projections of ``N`` positive pairs.

    Every projection is an anchor; its positive is the other view of the same image and its negatives are
    the ``2N - 2`` remaining projections of both views. With cosine similarity ``sim`` and temperature
    ``τ``, anchor ``i`` with positive ``j`` contributes
    ``-log( exp(sim(i, j)/τ) / Σ_{k≠i} exp(sim(i, k)/τ) )``; the loss is the mean over all ``2N`` anchors.

    Across ranks: the projections of every rank are gathered with
    :func:`~topo.trainer.dist.gather_with_grad`, so ``N`` is the *global* batch and the negatives include
    other ranks' samples. Each rank averages over its own ``2B`` anchors; under
    ``DistributedDataParallel`` (gradient averaging) this reproduces the single-process gradient on the
    concatenated batch. Every rank must pass the same ``B``.

    Args:
        z1: Projections of view 1, shape ``(B, D)``; normalised to unit length here.
        z2: Projections of view 2, shape ``(B, D)``; row ``i`` is the positive of ``z1[i]``.
        temperature: Softmax temperature ``τ``, > 0 (the paper uses 0.1 to 0.5).

    Returns:
        Scalar loss tensor.

    Raises:
        ValueError: If ``temperature <= 0``, the shapes differ or are not ``(B, D)``, or ``B == 0``.

    Examples:
        >>> import torch
        >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = nt_xent_loss(z1, z2, temperature=0.1)
        >>> loss.shape, bool(loss > 0)
        (torch.Size([]), True)
    """
    check_pair(z1, z2, temperature, ("z1", "z2"))
    z1 = F.normalize(z1, dim=1)
    z2 = F.normalize(z2, dim=1)
    b = z1.shape[0]
    all1, all2 = gather_with_grad(z1), gather_with_grad(z2)
    n = all1.shape[0]
    anchors = torch.cat([z1, z2], dim=0)  # (2B, D), local
    candidates = torch.cat([all1, all2], dim=0)  # (2N, D), global: view-1 block then view-2 block
    logits = anchors @ candidates.T / temperature

    local = torch.arange(b, device=z1.device) + get_rank() * b
    self_idx = torch.cat([local, local + n])
    pos_idx = torch.cat([local + n, local])
    rows = torch.arange(2 * b, device=z1.device)
    # An anchor is trivially most similar to itself, so it is removed from its own denominator.
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[rows, self_idx] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    return F.cross_entropy(logits, pos_idx)
