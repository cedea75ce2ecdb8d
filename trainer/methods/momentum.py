"""The momentum-encoder pattern shared by BYOL (target), MoCo v3 (momentum encoder) and DINO (teacher).

Each keeps an EMA copy of its backbone and of one head, computes the copy's outputs without gradients, and moves
the copy towards the online modules after every optimiser step with the cosine momentum schedule. The attribute
names of the copies are each method's own (``target_*``, ``momentum_*``, ``teacher_*``: they are checkpoint keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from topo.trainer.methods.base import (
    MethodOutput,
    SSLMethod,
    cosine_momentum,
    ema_update_,
    make_target,
    require_in_range,
    require_positive,
)
from topo.trainer.methods.heads import build_predictor, build_projector

__all__ = ["MomentumMethod", "PredictorHeadsConfig"]


@dataclass
class PredictorHeadsConfig:
    """The heads BYOL and MoCo v3 share: a projector, a predictor on it, and the momentum of the EMA copy.

    Attributes:
        proj_hidden_dim: Hidden width of the 2-layer projector.
        proj_dim: Projection width.
        pred_hidden_dim: Hidden width of the 2-layer predictor.
        base_momentum: Momentum at step 0, in ``[0, 1]``; cosine schedule to 1.0. BYOL's paper uses 0.996 for
            ImageNet with 4096-image batches; 0.99 is solo-learn's choice for small datasets.
        proj_batchnorm: BatchNorm in the projector and predictor hidden layers (per rank; see ``SimCLRConfig``).
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


class MomentumMethod(SSLMethod):
    """An :class:`SSLMethod` with an EMA copy of ``backbone`` and one head.

    Subclasses set ``momentum_attrs = (copy_of_backbone, copy_of_head)`` and call :meth:`init_momentum` with the
    head's attribute name once the head exists; their config has a ``base_momentum``.
    """

    momentum_attrs: ClassVar[tuple[str, str]]
    projector: nn.Module
    predictor: nn.Module  # the online branch's predictor (BYOL, MoCo v3); DINO has none

    def init_momentum(self, head: str) -> None:
        """Create the frozen copies of ``backbone`` and of the head named ``head``; momentum starts at the base."""
        self._momentum_head = head
        backbone_copy, head_copy = self.momentum_attrs
        setattr(self, backbone_copy, make_target(self.backbone))
        setattr(self, head_copy, make_target(getattr(self, head)))
        self.momentum = float(self.cfg.base_momentum)

    def init_projector_predictor(self, feat_dim: int, *, last_batchnorm: bool = False) -> None:
        """BYOL's and MoCo v3's online heads (widths from the config), then the projector's momentum copy.

        ``last_batchnorm`` (MoCo v3) ends the projector with a BatchNorm when the config's ``proj_batchnorm`` is on.
        """
        c = self.cfg
        self.projector = build_projector(
            in_dim=feat_dim,
            hidden_dim=c.proj_hidden_dim,
            out_dim=c.proj_dim,
            batchnorm=c.proj_batchnorm,
            last_batchnorm=last_batchnorm and c.proj_batchnorm,
        )
        self.predictor = build_predictor(
            in_dim=c.proj_dim, hidden_dim=c.pred_hidden_dim, out_dim=c.proj_dim, batchnorm=c.proj_batchnorm
        )
        self.init_momentum("projector")

    def _pairs(self) -> tuple[tuple[nn.Module, nn.Module], ...]:
        backbone_copy, head_copy = self.momentum_attrs
        return (
            (getattr(self, backbone_copy), self.backbone),
            (getattr(self, head_copy), getattr(self, self._momentum_head)),
        )

    @torch.no_grad()
    def momentum_outputs(self, *views: dict[str, Tensor]) -> list[Tensor]:
        """The EMA branch's ``head'(backbone'(view))`` for each view, without gradients."""
        (backbone_copy, _), (head_copy, _) = self._pairs()
        return [head_copy(backbone_copy(v)) for v in views]

    def online_predictions(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """View 1's features and ``predictor(projector(features))`` of both views (BYOL and MoCo v3 online branch)."""
        f1, f2 = self.embed(view1), self.embed(view2)
        predict = self.predictor(self.projector(f1)), self.predictor(self.projector(f2))
        return f1, *predict

    def momentum_output(self, loss: Tensor, features: Tensor) -> MethodOutput:
        """The step's output: the loss, the current momentum as a metric and the (detached) online features."""
        return MethodOutput(
            loss=loss, features=features.detach(), metric_values=dict(loss=loss, momentum=self.momentum)
        )

    def on_step_end(self, step: int, total_steps: int) -> None:
        """EMA-update both copies with ``cosine_momentum(base, step, total)``."""
        self.momentum = cosine_momentum(self.cfg.base_momentum, step, total_steps)
        for copy_, online in self._pairs():
            ema_update_(copy_, online, self.momentum)
