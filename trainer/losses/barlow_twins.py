"""Barlow Twins' redundancy-reduction loss on the cross-correlation matrix of two embeddings.

Reference: J. Zbontar, L. Jing, I. Misra, Y. LeCun, S. Deny, "Barlow Twins: Self-Supervised Learning via
Redundancy Reduction", ICML 2021 (arXiv:2103.03230), Eq. (1)-(2) and Algorithm 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from topo.trainer.dist import all_reduce_sum_with_grad, get_world_size

__all__ = ["barlow_twins_loss"]


def _standardise(z: Tensor, n: int, eps: float) -> Tensor:
    """Zero mean, unit (biased) std per dimension along the global batch."""
    mean = all_reduce_sum_with_grad(z.sum(dim=0)) / n
    centred = z - mean
    var = all_reduce_sum_with_grad(centred.pow(2).sum(dim=0)) / n
    return centred / torch.sqrt(var + eps)


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = 0.0051, eps: float = 1e-5) -> Tensor:
    """Barlow Twins loss ``Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²``.

    ``C`` is the ``D × D`` cross-correlation of Eq. (2): each embedding dimension is standardised along
    the batch, ``(z − mean) / sqrt(var + eps)`` with the biased variance (what the official code's
    ``BatchNorm1d(affine=False)`` computes; ``eps`` keeps a constant dimension finite), and
    ``C = z1_normᵀ · z2_norm / N``, so ``C_ij`` is a correlation coefficient in ``[−1, 1]``. Algorithm 1's
    pseudocode divides by the unbiased std instead, which caps ``C_ii`` at ``(N − 1)/N``.
    The loss is a sum over matrix entries (not a mean), so its scale grows with ``D``.

    Across ranks: the statistics (per-dimension sums, sums of squares and ``C`` itself) are summed over
    ranks with the differentiable :func:`~topo.trainer.dist.all_reduce_sum_with_grad`, so ``N`` is the
    global batch and every rank computes the same loss; under ``DistributedDataParallel`` the gradients
    equal those of one process on the concatenated batch. Every rank must pass the same ``B`` (the global
    batch size is taken as ``B * world_size`` rather than communicated, which would cost a device sync).

    Args:
        z1: Projections of view 1, shape ``(B, D)``.
        z2: Projections of view 2, shape ``(B, D)``.
        lambd: Weight ``λ`` of the off-diagonal (redundancy) term, >= 0. The paper's 0.0051 was tuned
            for ``D = 8192``; ``1 / D`` is a common rescaling when ``D`` is much smaller.
        eps: Added to the variance before the square root, > 0.

    Returns:
        Scalar loss tensor.

    Raises:
        ValueError: If ``lambd < 0``, ``eps <= 0``, the shapes differ or are not ``(B, D)``, or the global
            batch has fewer than 2 samples (the std is undefined).

    Examples:
        >>> import torch
        >>> z = torch.randn(32, 8)
        >>> float(barlow_twins_loss(z, z, lambd=0.0)) < 1e-3  # identical views: C_ii = 1
        True
    """
    if not lambd >= 0:
        raise ValueError(f"lambd must be >= 0, got {lambd}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both have shape (B, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0] * get_world_size()
    if n < 2:
        raise ValueError(f"the global batch must hold at least 2 samples, got {n}")
    c = all_reduce_sum_with_grad(_standardise(z1, n, eps).T @ _standardise(z2, n, eps)) / n
    eye = torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = c.pow(2).masked_fill(eye, 0.0).sum()
    return on_diag + lambd * off_diag
