"""BYOL's regression loss: mean squared error between L2-normalised prediction and target.

Reference: J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020 (arXiv:2006.07733), Eq. (2): ``‖q̄ − z̄′‖² = 2 − 2·⟨q, z′⟩ / (‖q‖·‖z′‖)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["byol_loss"]


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """Normalised MSE ``2 − 2·cos(p, z)`` averaged over the batch.

    The target is treated as a constant (the paper's stop-gradient ``sg(z′)``): ``z`` is detached here,
    so only the online branch receives gradients. The method symmetrises by adding the loss with the
    two views swapped, as in the paper.

    Across ranks: per-sample, no communication; ``DistributedDataParallel``'s gradient averaging alone
    gives the gradient of the global-batch mean.

    Args:
        p: Online predictions, shape ``(B, D)``.
        z: Target projections, shape ``(B, D)``; row ``i`` pairs with ``p[i]``.

    Returns:
        Scalar loss in ``[0, 4]``.

    Raises:
        ValueError: If the shapes differ or are not ``(B, D)``, or ``B == 0``.

    Examples:
        >>> import torch
        >>> p = torch.randn(8, 16)
        >>> float(byol_loss(p, 3 * p)) < 1e-6  # only the direction matters
        True
    """
    if p.ndim != 2 or p.shape != z.shape:
        raise ValueError(f"p and z must both have shape (B, D); got {tuple(p.shape)} and {tuple(z.shape)}")
    if p.shape[0] < 1:
        raise ValueError(f"batch size must be >= 1, got {p.shape[0]}")
    cos = F.cosine_similarity(p, z.detach(), dim=1)
    return (2 - 2 * cos).mean()
