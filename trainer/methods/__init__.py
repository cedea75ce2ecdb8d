"""Self-supervised methods behind one thin interface, and the registry that builds them by name.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> class Flat(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(12, 8)
    ...     def forward(self, view):
    ...         return self.fc(view["image"].flatten(1))
    >>> method = build_method("byol", Flat(), 8, proj_hidden_dim=16, proj_dim=4, pred_hidden_dim=16)
    >>> type(method).__name__, method.cfg.base_momentum
    ('BYOL', 0.99)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from topo.trainer.methods.barlow import BarlowTwins, BarlowTwinsConfig
from topo.trainer.methods.base import MethodOutput, SSLMethod
from topo.trainer.methods.byol import BYOL, BYOLConfig
from topo.trainer.methods.dino import DINO, DINOConfig
from topo.trainer.methods.mocov3 import MoCoV3, MoCoV3Config
from topo.trainer.methods.simclr import SimCLR, SimCLRConfig

__all__ = [
    "BYOL",
    "DINO",
    "METHODS",
    "BYOLConfig",
    "BarlowTwins",
    "BarlowTwinsConfig",
    "DINOConfig",
    "MethodOutput",
    "MoCoV3",
    "MoCoV3Config",
    "SSLMethod",
    "SimCLR",
    "SimCLRConfig",
    "build_method",
]

METHODS: dict[str, type[SSLMethod]] = {cls.name: cls for cls in (SimCLR, MoCoV3, BYOL, DINO, BarlowTwins)}


def build_method(name: str, backbone: nn.Module, feat_dim: int, **overrides: Any) -> SSLMethod:
    """Build the method registered as ``name``, with its config defaults replaced by ``overrides``.

    Args:
        name: One of ``METHODS`` (``"simclr"``, ``"mocov3"``, ``"byol"``, ``"dino"``, ``"barlow"``).
        backbone: Module mapping a view ``dict[str, Tensor]`` to features ``(B, feat_dim)``.
        feat_dim: Width of the backbone features.
        **overrides: Fields of the method's config dataclass (e.g. ``temperature=0.2``).

    Returns:
        The constructed method.

    Raises:
        ValueError: If ``name`` is not registered, an override is not a field of the method's config, or a
            value is out of range.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid names: {sorted(METHODS)}")
    cls = METHODS[name]
    valid = [f.name for f in dataclasses.fields(cls.config_cls)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {name!r}; valid keys: {valid}")
    return cls(backbone, feat_dim, cls.config_cls(**overrides))
