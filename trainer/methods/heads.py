"""MLP heads shared by the SSL methods: projectors, predictors and the DINO head.

All builders take keyword-only arguments so that a call site reads like the method's config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DINOHead", "build_mlp", "build_predictor", "build_projector"]


def _check_dims(**dims: int) -> None:
    for name, value in dims.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def build_mlp(
    *,
    in_dim: int,
    hidden_dims: Sequence[int],
    out_dim: int,
    batchnorm: bool = True,
    last_batchnorm: bool = False,
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """Build ``[Linear → (BN) → act] × len(hidden_dims) → Linear → (BN without affine)``.

    Linear layers followed by BatchNorm have no bias (the BN shift makes it redundant).

    Args:
        in_dim: Input width, >= 1.
        hidden_dims: Widths of the hidden layers (may be empty for a single linear layer), each >= 1.
        out_dim: Output width, >= 1.
        batchnorm: Whether hidden layers use ``BatchNorm1d``.
        last_batchnorm: Whether the output goes through a ``BatchNorm1d(affine=False)`` (MoCo v3).
        activation: Activation class for the hidden layers.

    Returns:
        The MLP as an ``nn.Sequential`` mapping ``(B, in_dim)`` to ``(B, out_dim)``.

    Raises:
        ValueError: If a width is < 1.

    Examples:
        >>> import torch
        >>> mlp = build_mlp(in_dim=8, hidden_dims=[16], out_dim=4)
        >>> mlp(torch.randn(3, 8)).shape
        torch.Size([3, 4])
    """
    _check_dims(in_dim=in_dim, out_dim=out_dim, **{f"hidden_dims[{i}]": d for i, d in enumerate(hidden_dims)})
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden_dims:
        layers.append(nn.Linear(prev, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation())
        prev = width
    layers.append(nn.Linear(prev, out_dim, bias=not last_batchnorm))
    if last_batchnorm:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)


def build_projector(
    *,
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    num_layers: int = 2,
    batchnorm: bool = True,
    last_batchnorm: bool = False,
) -> nn.Sequential:
    """Projector ``g(·)`` mapping backbone features to the space where the SSL loss is applied.

    Args:
        in_dim: Backbone feature width, >= 1.
        hidden_dim: Width of every hidden layer, >= 1.
        out_dim: Projection width, >= 1.
        num_layers: Number of linear layers, >= 1 (2 for SimCLR/BYOL/MoCo v3 ResNets, 3 for Barlow Twins).
        batchnorm: Whether hidden layers use BatchNorm.
        last_batchnorm: Whether the output is batch-normalised without affine parameters.

    Returns:
        The projector MLP.

    Raises:
        ValueError: If ``num_layers < 1`` or a width is < 1.

    Examples:
        >>> build_projector(in_dim=8, hidden_dim=16, out_dim=4, num_layers=3)[-1]
        Linear(in_features=16, out_features=4, bias=True)
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    return build_mlp(
        in_dim=in_dim,
        hidden_dims=[hidden_dim] * (num_layers - 1),
        out_dim=out_dim,
        batchnorm=batchnorm,
        last_batchnorm=last_batchnorm,
    )


def build_predictor(*, in_dim: int, hidden_dim: int, out_dim: int, batchnorm: bool = True) -> nn.Sequential:
    """Two-layer predictor ``q(·)`` of BYOL and MoCo v3 (online branch only).

    Args:
        in_dim: Projection width, >= 1.
        hidden_dim: Hidden width, >= 1.
        out_dim: Output width (equal to ``in_dim`` in both papers), >= 1.
        batchnorm: Whether the hidden layer uses BatchNorm.

    Returns:
        The predictor MLP.

    Raises:
        ValueError: If a width is < 1.

    Examples:
        >>> build_predictor(in_dim=4, hidden_dim=16, out_dim=4)[0]
        Linear(in_features=4, out_features=16, bias=False)
    """
    return build_mlp(in_dim=in_dim, hidden_dims=[hidden_dim], out_dim=out_dim, batchnorm=batchnorm)


class DINOHead(nn.Module):
    """DINO projection head: MLP → bottleneck → L2 normalisation → weight-normalised linear layer.

    Matches the official head (Caron et al. 2021): GELU MLP with truncated-normal init, then a linear layer
    to ``out_dim`` prototypes whose weight rows are normalised to unit length. With
    ``norm_last_layer=True`` (the default) the row norms are fixed to 1, which the paper found stabilises
    training; otherwise a learnable per-row scale is used (``weight_norm``'s ``g``). The normalisation is
    written out rather than using ``torch.nn.utils.weight_norm`` so that ``copy.deepcopy`` (the teacher)
    and the EMA update see plain parameters.

    Args:
        in_dim: Backbone feature width, >= 1.
        out_dim: Number of prototypes ``K``, >= 1.
        hidden_dim: Width of the hidden layers, >= 1.
        bottleneck_dim: Width before the prototype layer, >= 1.
        num_layers: Linear layers in the MLP part, >= 1.
        batchnorm: Whether hidden layers use BatchNorm.
        norm_last_layer: Fix the prototype norms to 1.

    Raises:
        ValueError: If ``num_layers < 1`` or a width is < 1.

    Examples:
        >>> import torch
        >>> head = DINOHead(in_dim=8, out_dim=32, hidden_dim=16, bottleneck_dim=4)
        >>> head(torch.randn(3, 8)).shape
        torch.Size([3, 32])
    """

    def __init__(
        self,
        *,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
        batchnorm: bool = False,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        _check_dims(in_dim=in_dim, out_dim=out_dim, hidden_dim=hidden_dim, bottleneck_dim=bottleneck_dim)
        self.mlp = build_mlp(
            in_dim=in_dim,
            hidden_dims=[hidden_dim] * (num_layers - 1),
            out_dim=bottleneck_dim,
            batchnorm=batchnorm,
            activation=nn.GELU,
        )
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.kaiming_uniform_(self.prototypes, a=math.sqrt(5))  # nn.Linear's default init
        self.prototype_scale: nn.Parameter | None = None if norm_last_layer else nn.Parameter(torch.ones(out_dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Map features ``(B, in_dim)`` to prototype logits ``(B, out_dim)``."""
        z = F.normalize(self.mlp(x), dim=-1)
        weight = F.normalize(self.prototypes, dim=-1)
        if self.prototype_scale is not None:
            weight = weight * self.prototype_scale
        return F.linear(z, weight)
