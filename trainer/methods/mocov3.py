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
    require_positive,
)
from topo.trainer.methods.momentum import MomentumMethod, PredictorHeadsConfig

__all__ = ["MoCoV3", "MoCoV3Config"]


@dataclass
class MoCoV3Config(PredictorHeadsConfig):
    """MoCo v3 hyper-parameters (the paper's ResNet settings): the shared heads, and the InfoNCE temperature.

    The projector ends in a BatchNorm without affine when ``proj_batchnorm`` is on.

    Attributes:
        temperature: InfoNCE temperature, > 0.
    """

    temperature: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("temperature", self.temperature)


class MoCoV3(MomentumMethod):
    """MoCo v3: queries ``q = h(g(f(x)))`` from the online branch, keys ``k = g'(f'(x))`` from its EMA copy.

    ``loss = ctr(q1, k2) + ctr(q2, k1)`` (:func:`~topo.trainer.losses.symmetric_infonce_loss`, keys
    gathered across ranks). The momentum backbone ``f'`` and projector ``g'`` are deep copies made at
    construction; :meth:`on_step_end` moves them towards the online ones with the cosine momentum.

    Constructed as :class:`~topo.trainer.methods.base.SSLMethod` (``cfg`` defaults to ``MoCoV3Config()``).
    """

    name = "mocov3"
    config_cls = MoCoV3Config
    momentum_attrs = ("momentum_backbone", "momentum_projector")
    cfg: MoCoV3Config

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: MoCoV3Config | None = None) -> None:
        super().__init__(backbone, feat_dim, cfg if cfg is not None else MoCoV3Config())
        self.init_projector_predictor(feat_dim, last_batchnorm=True)

    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """The symmetrised InfoNCE of online queries against momentum keys; metrics and features as BYOL's."""
        f1, q1, q2 = self.online_predictions(view1, view2)
        k1, k2 = self.momentum_outputs(view1, view2)
        return self.momentum_output(symmetric_infonce_loss(q1, q2, k1, k2, self.cfg.temperature), f1)
