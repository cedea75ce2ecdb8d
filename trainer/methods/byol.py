"""BYOL: predict a slowly moving target network's projection of the other view; no negatives.

Reference: J.-B. Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020 (arXiv:2006.07733).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from topo.trainer.losses import byol_loss
from topo.trainer.methods.base import MethodOutput, require_in_range, require_positive
from topo.trainer.methods.heads import build_predictor, build_projector
from topo.trainer.methods.momentum import MomentumMethod

__all__ = ["BYOL", "BYOLConfig"]


@dataclass
class BYOLConfig:
    """BYOL hyper-parameters.

    Attributes:
        proj_hidden_dim: Hidden width of the 2-layer projector.
        proj_dim: Projection width.
        pred_hidden_dim: Hidden width of the 2-layer predictor.
        base_momentum: Target momentum at step 0, in ``[0, 1]``; cosine schedule to 1.0. The paper uses
            0.996 for ImageNet with 4096-image batches; 0.99 is solo-learn's choice for small datasets.
        proj_batchnorm: BatchNorm in the projector and predictor hidden layers.
    """

    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    pred_hidden_dim: int = 4096
    base_momentum: float = 0.99
    proj_batchnorm: bool = True

    def __post_init__(self) -> None:
        require_positive("proj_hidden_dim", self.proj_hidden_dim)
        require_positive("proj_dim", self.proj_dim)
        require_positive("pred_hidden_dim", self.pred_hidden_dim)
        require_in_range("base_momentum", self.base_momentum, 0.0, 1.0)


class BYOL(MomentumMethod):
    """BYOL: ``loss = ‖q̄(g(f(x1))) − ḡ'(f'(x2))‖² + (views swapped)``, target ``f', g'`` an EMA.

    The loss is per-sample (:func:`~topo.trainer.losses.byol_loss`), so nothing is communicated across
    ranks. The target backbone and projector are deep copies updated in :meth:`on_step_end`.

    Args:
        backbone: Module mapping a view to ``(B, feat_dim)`` features.
        feat_dim: Backbone feature width.
        cfg: Hyper-parameters; defaults to ``BYOLConfig()``.

    Raises:
        ValueError: If ``feat_dim < 1``.
    """

    name = "byol"
    config_cls = BYOLConfig
    momentum_attrs = ("target_backbone", "target_projector")
    cfg: BYOLConfig

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: BYOLConfig | None = None) -> None:
        super().__init__(backbone, feat_dim, cfg if cfg is not None else BYOLConfig())
        c = self.cfg
        self.projector = build_projector(
            in_dim=feat_dim, hidden_dim=c.proj_hidden_dim, out_dim=c.proj_dim, batchnorm=c.proj_batchnorm
        )
        self.predictor = build_predictor(
            in_dim=c.proj_dim, hidden_dim=c.pred_hidden_dim, out_dim=c.proj_dim, batchnorm=c.proj_batchnorm
        )
        self.init_momentum("projector")

    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """Compute the symmetrised BYOL loss.

        Args:
            view1: First view, passed unchanged to both backbones.
            view2: Second view.

        Returns:
            Loss, metrics (``loss``, ``momentum``) and view-1 online features.
        """
        f1, p1, p2 = self.online_predictions(view1, view2)
        z1, z2 = self.momentum_outputs(view1, view2)
        return self.momentum_output(byol_loss(p1, z2) + byol_loss(p2, z1), f1)
