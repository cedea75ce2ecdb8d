"""A small multi-layer perceptron builder shared by the topology encoder and the MoE fusion."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


def mlp(
    dims: Sequence[int],
    *,
    norm: bool,
    final_act: bool,
    act: Callable[[], nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """Build ``Linear -> [LayerNorm] -> act`` blocks through the widths in ``dims``.

    ``dims = (d_in, h_1, ..., d_out)`` gives ``len(dims) - 1`` linear layers. Every layer but the last is
    followed by the optional ``LayerNorm`` and the activation; the last one is followed by them only when
    ``final_act`` is true, so a head that must stay linear (logits, embeddings) ends on a bare ``Linear``.

    The normalisation is ``LayerNorm`` rather than ``BatchNorm``: it acts on the last axis of each row on
    its own, so the MLP can be applied point-wise to ``(B, N, C)`` sets whose padded rows must not leak
    into the statistics of the valid ones, and it behaves the same for a batch of one.

    Args:
        dims: Layer widths, at least two, all positive. The input may have any shape ``(..., dims[0])``.
        norm: Put a ``LayerNorm`` after each activated linear layer (before the activation).
        final_act: Also normalise and activate the output of the last linear layer.
        act: Factory of the activation module; ``nn.ReLU`` by default.

    Returns:
        An ``nn.Sequential`` mapping ``(..., dims[0])`` to ``(..., dims[-1])``.

    Raises:
        ValueError: If ``dims`` has fewer than two entries or a width that is not a positive integer.

    Examples:
        >>> import torch
        >>> net = mlp([4, 64, 128], norm=True, final_act=False)
        >>> net(torch.zeros(2, 10, 4)).shape
        torch.Size([2, 10, 128])
        >>> [type(m).__name__ for m in net]
        ['Linear', 'LayerNorm', 'ReLU', 'Linear']
    """
    dims = list(dims)
    if len(dims) < 2:
        raise ValueError(f"mlp needs at least two widths (input and output), got dims={dims}")
    for d in dims:
        # bool is an int subclass; a True/False width is always a bug upstream.
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"mlp widths must be positive integers, got dims={dims}")
    layers: list[nn.Module] = []
    n_linear = len(dims) - 1
    for i in range(n_linear):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < n_linear - 1 or final_act:
            if norm:
                layers.append(nn.LayerNorm(dims[i + 1]))
            layers.append(act())
    return nn.Sequential(*layers)
