"""Distributed plumbing for the trainer: rank queries and the few collectives the SSL losses need.

Every function works without an initialised process group (single process, CPU tests, notebooks): the
rank is 0, the world size is 1 and every collective is the identity. Losses and methods call these
helpers unconditionally, so the same code path runs on one process and under ``torchrun``.

Two kinds of collectives live here:

* differentiable ones (:func:`gather_with_grad`, :func:`all_reduce_sum_with_grad`), used *inside* a loss
  where gradients must flow back to the rank that produced each piece. Their backward sums the
  incoming gradients over ranks, so that after ``DistributedDataParallel`` averages parameter gradients
  the result equals the gradient of the *mean of the per-rank losses*, exactly as one process would get
  on the concatenated batch;
* a non-differentiable one (:func:`all_reduce_mean`), for running statistics and logged metrics.

All ranks must call a collective in the same order with tensors of the same shape.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "all_reduce_mean",
    "all_reduce_sum_with_grad",
    "gather_with_grad",
    "get_rank",
    "get_world_size",
    "is_dist_initialized",
    "is_main_process",
]


def is_dist_initialized() -> bool:
    """Whether ``torch.distributed`` is available and a default process group exists."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Rank of this process in the default group, 0 without a process group."""
    return dist.get_rank() if is_dist_initialized() else 0


def get_world_size() -> int:
    """Number of processes in the default group, 1 without a process group."""
    return dist.get_world_size() if is_dist_initialized() else 1


def is_main_process() -> bool:
    """Whether this is rank 0 (the process that logs, checkpoints and exports)."""
    return get_rank() == 0


def gather_with_grad(t: Tensor) -> Tensor:
    """Concatenate ``t`` from every rank along dim 0, keeping the autograd graph.

    Rank ``r``'s rows land at ``[r * B, (r + 1) * B)`` of the result. In backward, the gradient of each
    rank's slice is summed over all ranks and sent back to the rank that produced it.

    Args:
        t: Tensor of shape ``(B, ...)``; ``B`` and the trailing shape must match on every rank.

    Returns:
        Tensor of shape ``(world_size * B, ...)``; ``t`` itself when the world size is 1.

    Examples:
        >>> import torch
        >>> x = torch.ones(4, 8, requires_grad=True)
        >>> gather_with_grad(x).shape  # no process group: identity
        torch.Size([4, 8])
    """
    if get_world_size() == 1:
        return t
    from torch.distributed.nn.functional import all_gather

    # torch 2.14 marks this wrapper deprecated in favour of a private functional collective whose backward
    # needs reduce-scatter, which gloo lacks; this one falls back to all-to-all on gloo and stays correct.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        pieces = all_gather(t)
    return torch.cat(pieces, dim=0)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the incoming gradients over ranks as well."""

    @staticmethod
    def forward(ctx: Any, t: Tensor) -> Tensor:
        out = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        grad = grad_output.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_sum_with_grad(t: Tensor) -> Tensor:
    """Differentiable sum of ``t`` over ranks (for batch statistics computed inside a loss).

    Args:
        t: Tensor of any shape, the same on every rank.

    Returns:
        The element-wise sum over ranks, same shape as ``t``; ``t`` itself when the world size is 1.

    Examples:
        >>> import torch
        >>> all_reduce_sum_with_grad(torch.tensor([1.0, 2.0]))
        tensor([1., 2.])
    """
    if get_world_size() == 1:
        return t
    out = _AllReduceSum.apply(t)
    assert isinstance(out, Tensor)
    return out


@torch.no_grad()
def all_reduce_mean(t: Tensor) -> Tensor:
    """Mean of ``t`` over ranks, without gradient (running statistics, logged metrics).

    Args:
        t: Tensor of any shape, the same on every rank. It is not modified.

    Returns:
        A new tensor holding the element-wise mean over ranks; ``t`` itself without a process group.

    Examples:
        >>> import torch
        >>> all_reduce_mean(torch.tensor([3.0]))
        tensor([3.])
    """
    world_size = get_world_size()
    if world_size == 1:
        return t
    out = t.detach().clone(memory_format=torch.contiguous_format)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.div_(world_size)
