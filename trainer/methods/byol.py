"""BYOL: predict a slowly moving target network's projection of the other view; no negatives.

Reference: J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020 (arXiv:2006.07733).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from topo.trainer.losses import byol_loss
from topo.trainer.methods.base import MethodOutput
from topo.trainer.methods.momentum import MomentumMethod, PredictorHeadsConfig

__all__ = ["BYOL", "BYOLConfig"]


@dataclass
class BYOLConfig(PredictorHeadsConfig):
    """BYOL hyper-parameters: the shared projector/predictor heads and momentum (see the base class)."""


class BYOL(MomentumMethod):
    """BYOL: ``loss = ‖q̄(g(f(x1))) − ḡ'(f'(x2))‖² + (views swapped)``, target ``f', g'`` an EMA.

    The loss is per-sample (:func:`~topo.trainer.losses.byol_loss`), so nothing is communicated across
    ranks. The target backbone and projector are deep copies updated in :meth:`on_step_end`.

    Constructed as :class:`~topo.trainer.methods.base.SSLMethod` (``cfg`` defaults to ``BYOLConfig()``).
    """

    name = "byol"
    config_cls = BYOLConfig
    momentum_attrs = ("target_backbone", "target_projector")
    cfg: BYOLConfig

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: BYOLConfig | None = None) -> None:
        super().__init__(backbone, feat_dim, cfg if cfg is not None else BYOLConfig())
        self.init_projector_predictor(feat_dim)

    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """The symmetrised BYOL loss; metrics ``loss`` and ``momentum``, features of view 1 (online)."""
        f1, p1, p2 = self.online_predictions(view1, view2)
        z1, z2 = self.momentum_outputs(view1, view2)
        return self.momentum_output(byol_loss(p1, z2) + byol_loss(p2, z1), f1)
