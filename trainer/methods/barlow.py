"""Barlow Twins: make the cross-correlation of two views' embeddings close to the identity.

Reference: J. Zbontar, L. Jing, I. Misra, Y. LeCun, S. Deny, "Barlow Twins: Self-Supervised Learning via
Redundancy Reduction", ICML 2021 (arXiv:2103.03230).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from topo.trainer.losses import barlow_twins_loss
from topo.trainer.methods.base import MethodOutput, SSLMethod, require_positive
from topo.trainer.methods.heads import build_projector

__all__ = ["BarlowTwins", "BarlowTwinsConfig"]


@dataclass
class BarlowTwinsConfig:
    """Barlow Twins hyper-parameters.

    Attributes:
        proj_hidden_dim: Hidden width of the 3-layer projector.
        proj_dim: Embedding width ``D`` of the cross-correlation matrix.
        lambd: Off-diagonal weight ``λ``, >= 0, or ``None`` for ``1 / proj_dim``. The paper's 0.0051 was
            tuned for ``D = 8192``; ``1 / D`` (suggested by Tsai et al. 2021) keeps the off-diagonal sum,
            which has ``D² − D`` entries, on the same O(D) scale as the diagonal sum when ``D`` changes.
        proj_batchnorm: BatchNorm in the projector's hidden layers (per rank; turn off for exact
            multi-process equivalence).
    """

    proj_hidden_dim: int = 2048
    proj_dim: int = 2048
    lambd: float | None = 0.0051
    proj_batchnorm: bool = True

    def __post_init__(self) -> None:
        require_positive("proj_hidden_dim", self.proj_hidden_dim)
        require_positive("proj_dim", self.proj_dim)
        if self.lambd is not None and not self.lambd >= 0:
            raise ValueError(f"lambd must be >= 0 or None (meaning 1/proj_dim), got {self.lambd}")

    @property
    def effective_lambda(self) -> float:
        """``λ`` actually used by the loss."""
        return 1.0 / self.proj_dim if self.lambd is None else self.lambd


class BarlowTwins(SSLMethod):
    """Barlow Twins: ``loss = Σ(1 − C_ii)² + λ Σ_{i≠j} C_ij²`` on projector outputs of both views.

    The per-dimension batch statistics and ``C`` are summed across ranks inside the loss
    (:func:`~topo.trainer.losses.barlow_twins_loss`), so the loss is that of the global batch. No
    momentum encoder: :meth:`on_step_end` does nothing.

    Constructed as :class:`~topo.trainer.methods.base.SSLMethod` (``cfg`` defaults to ``BarlowTwinsConfig()``).
    """

    name = "barlow"
    config_cls = BarlowTwinsConfig
    cfg: BarlowTwinsConfig

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: BarlowTwinsConfig | None = None) -> None:
        super().__init__(backbone, feat_dim, cfg if cfg is not None else BarlowTwinsConfig())
        self.projector = build_projector(
            in_dim=feat_dim,
            hidden_dim=self.cfg.proj_hidden_dim,
            out_dim=self.cfg.proj_dim,
            num_layers=3,
            batchnorm=self.cfg.proj_batchnorm,
        )

    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """Compute the Barlow Twins loss of the two views' projections.

        Args:
            view1: First view, passed unchanged to the backbone.
            view2: Second view.

        Returns:
            Loss, metrics (``loss``) and view-1 features.
        """
        f1, f2 = self.embed(view1), self.embed(view2)
        loss = barlow_twins_loss(self.projector(f1), self.projector(f2), lambd=self.cfg.effective_lambda)
        return MethodOutput(loss=loss, features=f1.detach(), metric_values={"loss": loss})
