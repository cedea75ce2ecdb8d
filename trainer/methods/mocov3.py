"""MoCo v3: contrastive learning against a momentum encoder with in-batch keys.

Reference: X. Chen, S. Xie, K. He, "An Empirical Study of Training Self-Supervised Vision Transformers",
ICCV 2021 (arXiv:2104.02057).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from topo.trainer.losses import symmetric_infonce_loss
from topo.trainer.methods.base import (
    MethodOutput,
    require_in_range,
    require_positive,
)
from topo.trainer.methods.heads import build_predictor, build_projector
from topo.trainer.methods.momentum import MomentumMethod

__all__ = ["MoCoV3", "MoCoV3Config"]


@dataclass
class MoCoV3Config:
    """MoCo v3 hyper-parameters (the paper's ResNet settings).

    Attributes:
        proj_hidden_dim: Hidden width of the 2-layer projector (ends in BatchNorm without affine).
        proj_dim: Projection width.
        pred_hidden_dim: Hidden width of the 2-layer predictor.
        temperature: InfoNCE temperature, > 0.
        base_momentum: Momentum at step 0, in ``[0, 1]``; follows a cosine schedule to 1.0.
        proj_batchnorm: BatchNorm in the projector and predictor (per rank; see SimCLRConfig).
    """

    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    pred_hidden_dim: int = 4096
    temperature: float = 0.2
    base_momentum: float = 0.99
    proj_batchnorm: bool = True

    def __post_init__(self) -> None:
        require_positive("proj_hidden_dim", self.proj_hidden_dim)
        require_positive("proj_dim", self.proj_dim)
        require_positive("pred_hidden_dim", self.pred_hidden_dim)
        require_positive("temperature", self.temperature)
        require_in_range("base_momentum", self.base_momentum, 0.0, 1.0)


class MoCoV3(MomentumMethod):
    """MoCo v3: queries ``q = h(g(f(x)))`` from the online branch, keys ``k = g'(f'(x))`` from its EMA copy.

    ``loss = ctr(q1, k2) + ctr(q2, k1)`` (:func:`~topo.trainer.losses.symmetric_infonce_loss`, keys
    gathered across ranks). The momentum backbone ``f'`` and projector ``g'`` are deep copies made at
    construction; :meth:`on_step_end` moves them towards the online ones with the cosine momentum.

    Args:
        backbone: Module mapping a view to ``(B, feat_dim)`` features.
        feat_dim: Backbone feature width.
        cfg: Hyper-parameters; defaults to ``MoCoV3Config()``.

    Raises:
        ValueError: If ``feat_dim < 1``.
    """

    name = "mocov3"
    config_cls = MoCoV3Config
    momentum_attrs = ("momentum_backbone", "momentum_projector")
    cfg: MoCoV3Config

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: MoCoV3Config | None = None) -> None:
        super().__init__(backbone, feat_dim, cfg if cfg is not None else MoCoV3Config())
        c = self.cfg
        self.projector = build_projector(
            in_dim=feat_dim,
            hidden_dim=c.proj_hidden_dim,
            out_dim=c.proj_dim,
            batchnorm=c.proj_batchnorm,
            last_batchnorm=c.proj_batchnorm,
        )
        self.predictor = build_predictor(
            in_dim=c.proj_dim, hidden_dim=c.pred_hidden_dim, out_dim=c.proj_dim, batchnorm=c.proj_batchnorm
        )
        self.init_momentum("projector")

    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """Compute the symmetrised InfoNCE of online queries against momentum keys.

        Args:
            view1: First view, passed unchanged to both backbones.
            view2: Second view.

        Returns:
            Loss, metrics (``loss``, ``momentum``) and view-1 online features.
        """
        f1, q1, q2 = self.online_predictions(view1, view2)
        k1, k2 = self.momentum_outputs(view1, view2)
        return self.momentum_output(symmetric_infonce_loss(q1, q2, k1, k2, self.cfg.temperature), f1)
