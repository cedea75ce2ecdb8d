"""InfoNCE as used by MoCo v3, in its one-directional and symmetrised forms.

Reference: X. Chen, S. Xie, K. He, "An Empirical Study of Training Self-Supervised Vision Transformers",
ICCV 2021 (arXiv:2104.02057), Algorithm 1: ``ctr(q, k) = 2τ · CE(q·kᵀ / τ, arange(N))`` and
``loss = ctr(q1, k2) + ctr(q2, k1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from topo.trainer.dist import gather_with_grad, get_rank
from topo.trainer.losses.checks import check_pair

__all__ = ["infonce_loss", "symmetric_infonce_loss"]


def infonce_loss(q: Tensor, k: Tensor, temperature: float = 0.2) -> Tensor:
    """MoCo v3's ``ctr(q, k)``: InfoNCE of queries against in-batch keys, scaled by ``2τ``.

    Queries and keys are L2-normalised (as in the official implementation). Query ``i``'s positive is key
    ``i``; every other key in the (global) batch is a negative. The cross-entropy is multiplied by ``2τ``
    as in the paper's pseudocode: the ``τ`` cancels the ``1/τ`` of the logits in the gradient with respect
    to the similarities, so changing ``τ`` does not rescale the effective learning rate.

    Across ranks: keys are gathered from every rank with :func:`~topo.trainer.dist.gather_with_grad`
    (MoCo v3 keys come from the momentum encoder and carry no gradient, but gradients would flow correctly
    if they did); each rank averages over its own ``B`` queries, whose positives sit at offset
    ``rank * B`` in the gathered keys. Every rank must pass the same ``B``.

    Args:
        q: Queries (online branch, after the predictor), shape ``(B, D)``.
        k: Keys (momentum branch), shape ``(B, D)``; row ``i`` is the positive of ``q[i]``.
        temperature: Softmax temperature ``τ``, > 0 (0.2 in the paper for ResNets, 0.1 for ViTs).

    Returns the scalar loss; raises ``ValueError`` on a bad ``temperature`` or shapes (as ``nt_xent_loss``).

    Examples:
        >>> import torch
        >>> q, k = torch.randn(8, 16), torch.randn(8, 16)
        >>> infonce_loss(q, k, temperature=0.2).shape
        torch.Size([])
    """
    check_pair(q, k, temperature, ("q", "k"))
    q = F.normalize(q, dim=1)
    k = gather_with_grad(F.normalize(k, dim=1))
    logits = q @ k.T / temperature
    labels = torch.arange(q.shape[0], device=q.device) + get_rank() * q.shape[0]
    return 2 * temperature * F.cross_entropy(logits, labels)


def symmetric_infonce_loss(q1: Tensor, q2: Tensor, k1: Tensor, k2: Tensor, temperature: float = 0.2) -> Tensor:
    """Symmetrised MoCo v3 loss ``ctr(q1, k2) + ctr(q2, k1)``.

    Args:
        q1: Queries from view 1, shape ``(B, D)``.
        q2: Queries from view 2, shape ``(B, D)``.
        k1: Keys from view 1, shape ``(B, D)``.
        k2: Keys from view 2, shape ``(B, D)``.
        temperature: Softmax temperature ``τ``, > 0.

    Returns:
        Scalar loss tensor (the sum of both directions, as in the paper; not halved).

    Raises:
        ValueError: As :func:`infonce_loss`.

    Examples:
        >>> import torch
        >>> q1, q2, k1, k2 = (torch.randn(4, 8) for _ in range(4))
        >>> symmetric_infonce_loss(q1, q2, k1, k2).shape
        torch.Size([])
    """
    return infonce_loss(q1, k2, temperature) + infonce_loss(q2, k1, temperature)
