"""SimCLR: contrastive learning with in-batch negatives and the NT-Xent loss.

Reference: T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020 (arXiv:2002.05709).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from topo.trainer.losses import nt_xent_loss
from topo.trainer.methods.base import MethodOutput, SSLMethod, require_positive
from topo.trainer.methods.heads import build_projector

__all__ = ["SimCLR", "SimCLRConfig"]


@dataclass
class SimCLRConfig:
    """SimCLR hyper-parameters.

    Attributes:
        proj_hidden_dim: Hidden width of the 2-layer projector.
        proj_dim: Projection width (the space of the loss).
        temperature: NT-Xent temperature, > 0.
        proj_batchnorm: BatchNorm in the projector's hidden layer (SimCLR v2 / solo-learn). Turn off to
            make multi-process gradients match a single process exactly: BN statistics are per rank.
    """

    proj_hidden_dim: int = 2048
    proj_dim: int = 128
    temperature: float = 0.1
    proj_batchnorm: bool = True

    def __post_init__(self) -> None:
        require_positive("proj_hidden_dim", self.proj_hidden_dim)
        require_positive("proj_dim", self.proj_dim)
        require_positive("temperature", self.temperature)


class SimCLR(SSLMethod):
    """SimCLR: ``loss = NT-Xent(g(f(x1)), g(f(x2)))`` with projector ``g`` on backbone ``f``.

    No momentum encoder, so :meth:`on_step_end` does nothing. Negatives are gathered across ranks by the
    loss (see :func:`~topo.trainer.losses.nt_xent_loss`).

    Constructed as :class:`~topo.trainer.methods.base.SSLMethod` (``cfg`` defaults to ``SimCLRConfig()``).
    """

    name = "simclr"
    config_cls = SimCLRConfig
    cfg: SimCLRConfig

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: SimCLRConfig | None = None) -> None:
        super().__init__(backbone, feat_dim, cfg if cfg is not None else SimCLRConfig())
        self.projector = build_projector(
            in_dim=feat_dim,
            hidden_dim=self.cfg.proj_hidden_dim,
            out_dim=self.cfg.proj_dim,
            batchnorm=self.cfg.proj_batchnorm,
        )

    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """Embed and project both views, then apply NT-Xent.

        Args:
            view1: First view, passed unchanged to the backbone.
            view2: Second view.

        Returns:
            Loss, metrics (``loss``; ``pos_cos``: mean cosine of positive pairs) and view-1 features.
        """
        f1, f2 = self.embed(view1), self.embed(view2)
        z1, z2 = self.projector(f1), self.projector(f2)
        loss = nt_xent_loss(z1, z2, self.cfg.temperature)
        pos_cos = F.cosine_similarity(z1.detach(), z2.detach(), dim=1).mean()
        metric_values: dict[str, Tensor | float] = {"loss": loss, "pos_cos": pos_cos}
        return MethodOutput(loss=loss, features=f1.detach(), metric_values=metric_values)
