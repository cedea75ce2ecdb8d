"""The thin interface every SSL method implements, and the momentum-encoder helpers they share.

A method owns a *backbone* (any ``nn.Module`` mapping a view, a ``dict[str, Tensor]``, to features
``(B, feat_dim)``), its own heads and, for momentum methods, a frozen target copy. Methods never look
inside a view: they pass it to the backbone. That is what lets one method pretrain the visual encoder,
the topology encoder or the fused model, whichever backbone it is given.

Training-loop contract::

    out = method(view1, view2)          # or ddp_model(view1, view2)
    out.loss.backward()
    method.before_optimizer_step(step, total_steps)  # gradient clipping, frozen layers
    optimizer.step()
    method.on_step_end(step, total_steps)   # step: 0-based index of the optimiser step just taken
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = [
    "MethodOutput",
    "SSLMethod",
    "cosine_momentum",
    "ema_update_",
    "make_target",
    "metrics_dict",
    "require_in_range",
    "require_positive",
]


@dataclass
class MethodOutput:
    """What one training step of a method returns.

    Attributes:
        loss: Scalar loss to backpropagate.
        features: ``(B, feat_dim)`` online backbone features of view 1, detached (online probes, kNN).
        metric_values: Scalar tensors or floats behind :attr:`metrics`, as the method produced them.
        metrics: Detached floats for logging (always includes ``"loss"``), converted on first access.
    """

    loss: Tensor
    features: Tensor
    metric_values: dict[str, Tensor | float] = field(default_factory=dict, repr=False)

    @cached_property
    def metrics(self) -> dict[str, float]:
        """``metric_values`` as floats; on a GPU this is one device sync, so steps that do not log skip it."""
        return metrics_dict(**self.metric_values)


class SSLMethod(nn.Module, ABC):
    """Base class of the self-supervised methods (see the module docstring for the loop contract).

    Subclasses set ``name`` (the registry key) and ``config_cls`` (their config dataclass), build their
    heads in ``__init__`` and implement :meth:`forward`.

    Args:
        backbone: Module mapping a view ``dict[str, Tensor]`` to features ``(B, feat_dim)``.
        feat_dim: Width of the backbone features, >= 1.
        cfg: The method's config dataclass instance.

    Raises:
        ValueError: If ``feat_dim < 1``.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[Any]]

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: Any) -> None:
        super().__init__()
        if feat_dim < 1:
            raise ValueError(f"feat_dim must be >= 1, got {feat_dim}")
        self.backbone = backbone
        self.feat_dim = feat_dim
        self.cfg = cfg

    @abstractmethod
    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """Compute the loss for two augmented views of the same batch.

        Args:
            view1: First view, passed unchanged to the backbone.
            view2: Second view, same keys and batch size.

        Returns:
            The loss, logging metrics and detached view-1 features.
        """

    def before_optimizer_step(self, step: int, total_steps: int) -> None:
        """Adjust the gradients of optimiser step ``step`` (0-based) before it is taken. Default: nothing to do."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Update momentum encoders and schedules after optimiser step ``step`` (0-based) of ``total_steps``.

        Default: nothing to do.
        """

    @property
    def encoder(self) -> nn.Module:
        """The online backbone, used for feature extraction after training."""
        return self.backbone

    def embed(self, view: dict[str, Tensor]) -> Tensor:
        """Run the online backbone on ``view`` and check it returned ``(B, feat_dim)``.

        Raises:
            ValueError: If the backbone output is not ``(B, feat_dim)``.
        """
        features = self.backbone(view)
        if features.ndim != 2 or features.shape[1] != self.feat_dim:
            raise ValueError(
                f"backbone returned shape {tuple(features.shape)}, expected (B, {self.feat_dim}); "
                "set feat_dim to the backbone's output width"
            )
        return features


def metrics_dict(**values: Tensor | float) -> dict[str, float]:
    """Convert scalar logging values to floats, with one device sync for all the tensors together."""
    tensor_keys = [k for k, v in values.items() if isinstance(v, Tensor)]
    converted = {k: float(v) for k, v in values.items() if not isinstance(v, Tensor)}
    if tensor_keys:
        tensors = [v for k, v in values.items() if isinstance(v, Tensor)]
        stacked = torch.stack([t.detach().float().reshape(()) for t in tensors])
        converted.update(zip(tensor_keys, stacked.tolist(), strict=True))
    return {k: converted[k] for k in values}


def require_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value > 0``."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def require_in_range(name: str, value: float, low: float, high: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """BYOL's cosine schedule ``m = 1 − (1 − base)·(cos(π·step/total) + 1)/2``: ``base`` at 0, 1 at the end.

    Args:
        base: Momentum at step 0, in ``[0, 1]``.
        step: Current step, in ``[0, total_steps]``.
        total_steps: Number of training steps, >= 1.

    Returns:
        The momentum for this step.

    Raises:
        ValueError: If an argument is outside its range.

    Examples:
        >>> cosine_momentum(0.99, 0, 100), cosine_momentum(0.99, 100, 100)
        (0.99, 1.0)
    """
    require_in_range("base momentum", base, 0.0, 1.0)
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= step <= total_steps:
        raise ValueError(f"step must be in [0, {total_steps}], got {step}")
    return 1 - (1 - base) * (math.cos(math.pi * step / total_steps) + 1) / 2


def make_target(module: nn.Module) -> nn.Module:
    """Deep-copy ``module`` as a frozen momentum target (``requires_grad=False`` everywhere).

    The copy stays a submodule of the method, so it follows ``.to()``, ``.train()``/``.eval()`` and is
    saved in ``state_dict``; ``DistributedDataParallel`` ignores its parameters (they need no gradient)
    and they stay identical across ranks because the EMA is deterministic.
    """
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place, ``θ_target ← m·θ_target + (1 − m)·θ_online`` for every parameter (buffers untouched).

    Buffers such as BatchNorm running statistics are not averaged: the target computes its own in its
    forward passes, as in the BYOL and MoCo v3 implementations.

    Raises:
        ValueError: If ``momentum`` is not in ``[0, 1]`` or the modules' parameter lists differ.
    """
    require_in_range("momentum", momentum, 0.0, 1.0)
    target_params = list(target.parameters())
    online_params = list(online.parameters())
    if len(target_params) != len(online_params):
        raise ValueError(f"target has {len(target_params)} parameters, online has {len(online_params)}")
    for t, o in zip(target_params, online_params, strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)
