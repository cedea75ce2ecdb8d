"""DINO: self-distillation from a momentum teacher with centring and sharpening.

Reference: M. Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021
(arXiv:2104.14294).

Deviations from the paper, both deliberate:

* **Two global views, no multi-crop.** A method receives exactly two views and never looks inside them
  (the same method must work for image, persistence-diagram and fused views, for which "local crops" have
  no common meaning), so the loss is Algorithm 1's ``H(t1, s2)/2 + H(t2, s1)/2``.
* **``out_dim = 4096`` prototypes instead of 65536.** The paper's 65536 was tuned for ImageNet's 1.28M
  images; on medical datasets of a few thousand images it would outnumber the images many times over,
  and the ``256 × 65536`` prototype layer (16.8M parameters) would dwarf a small backbone while its
  logits dominate activation memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from topo.trainer.losses import DINOLoss
from topo.trainer.methods.base import (
    MethodOutput,
    require_in_range,
    require_positive,
)
from topo.trainer.methods.heads import DINOHead
from topo.trainer.methods.momentum import MomentumMethod

__all__ = ["DINO", "DINOConfig"]


@dataclass
class DINOConfig:
    """DINO hyper-parameters.

    Attributes:
        head_hidden_dim: Hidden width of the head MLP.
        bottleneck_dim: Width before the prototype layer.
        out_dim: Number of prototypes ``K`` (see the module docstring for why 4096).
        head_num_layers: Linear layers in the head MLP.
        head_batchnorm: BatchNorm in the head's hidden layers (off in the paper's ViT setting).
        norm_last_layer: Fix the prototype norms to 1 (more stable, as in the paper).
        student_temp: Student temperature, > 0.
        warmup_teacher_temp: Teacher temperature at step 0, > 0.
        teacher_temp: Teacher temperature after warm-up, > 0.
        warmup_teacher_temp_frac: Fraction of training over which the teacher temperature rises linearly,
            in ``[0, 1]`` (the paper: 30 of 100-300 epochs).
        center_momentum: EMA momentum of the teacher centre, in ``[0, 1]``.
        base_momentum: Teacher momentum at step 0, in ``[0, 1]``; cosine schedule to 1.0.
        clip_grad: Clip each student parameter's gradient to this norm, as the paper's code does (3.0); 0 = off.
        freeze_last_layer_frac: Fraction of training during which the prototypes get no update (the paper: the
            first epoch of 100–300, "to stabilise training"), in ``[0, 1]``.
    """

    head_hidden_dim: int = 2048
    bottleneck_dim: int = 256
    out_dim: int = 4096
    head_num_layers: int = 3
    head_batchnorm: bool = False
    norm_last_layer: bool = True
    student_temp: float = 0.1
    warmup_teacher_temp: float = 0.04
    teacher_temp: float = 0.07
    warmup_teacher_temp_frac: float = 0.3
    center_momentum: float = 0.9
    base_momentum: float = 0.996
    clip_grad: float = 3.0
    freeze_last_layer_frac: float = 0.01

    def __post_init__(self) -> None:
        for name in ("head_hidden_dim", "bottleneck_dim", "out_dim", "head_num_layers"):
            require_positive(name, getattr(self, name))
        for name in ("student_temp", "warmup_teacher_temp", "teacher_temp"):
            require_positive(name, getattr(self, name))
        require_in_range("warmup_teacher_temp_frac", self.warmup_teacher_temp_frac, 0.0, 1.0)
        require_in_range("center_momentum", self.center_momentum, 0.0, 1.0)
        require_in_range("base_momentum", self.base_momentum, 0.0, 1.0)
        require_in_range("freeze_last_layer_frac", self.freeze_last_layer_frac, 0.0, 1.0)
        if self.clip_grad < 0:
            raise ValueError(f"clip_grad must be >= 0, got {self.clip_grad}")


class DINO(MomentumMethod):
    """DINO with a student ``h(f(x))`` and an EMA teacher ``h'(f'(x))`` over two global views.

    The method owns both schedules: the teacher momentum (cosine, :meth:`on_step_end`) and the teacher
    temperature (linear warm-up, :meth:`teacher_temperature`). The current temperature is a Python float,
    ``teacher_temp``, saved in ``state_dict`` as the module's extra state (a float rather than a buffer so
    that reading it costs no device sync). The centre lives in ``loss_fn``
    (:class:`~topo.trainer.losses.DINOLoss`) and is updated on every training-mode forward.

    Constructed as :class:`~topo.trainer.methods.base.SSLMethod` (``cfg`` defaults to ``DINOConfig()``).
    """

    name = "dino"
    config_cls = DINOConfig
    momentum_attrs = ("teacher_backbone", "teacher_head")
    cfg: DINOConfig

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: DINOConfig | None = None) -> None:
        super().__init__(backbone, feat_dim, cfg if cfg is not None else DINOConfig())
        c = self.cfg
        self.head = DINOHead(
            in_dim=feat_dim,
            out_dim=c.out_dim,
            hidden_dim=c.head_hidden_dim,
            bottleneck_dim=c.bottleneck_dim,
            num_layers=c.head_num_layers,
            batchnorm=c.head_batchnorm,
            norm_last_layer=c.norm_last_layer,
        )
        self.init_momentum("head")
        self.loss_fn = DINOLoss(c.out_dim, student_temp=c.student_temp, center_momentum=c.center_momentum)
        self.teacher_temp = self.teacher_temperature(0, 1)

    def get_extra_state(self) -> dict[str, float]:
        """Schedule state saved in ``state_dict``, so a resumed run continues with the right temperature."""
        return {"teacher_temp": self.teacher_temp, "momentum": self.momentum}

    def set_extra_state(self, state: dict[str, float]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        self.teacher_temp = float(state["teacher_temp"])
        self.momentum = float(state["momentum"])

    def teacher_temperature(self, step: int, total_steps: int) -> float:
        """Teacher temperature at ``step`` of ``total_steps``.

        Linear from ``warmup_teacher_temp`` to ``teacher_temp`` over the first
        ``warmup_teacher_temp_frac · total_steps`` steps, then constant.

        Raises:
            ValueError: If ``total_steps < 1`` or ``step < 0``.
        """
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        warmup_steps = self.cfg.warmup_teacher_temp_frac * total_steps
        progress = 1.0 if warmup_steps == 0 else min(step / warmup_steps, 1.0)
        start, end = self.cfg.warmup_teacher_temp, self.cfg.teacher_temp
        return start + progress * (end - start)

    def forward(self, view1: dict[str, Tensor], view2: dict[str, Tensor]) -> MethodOutput:
        """Distil the teacher's centred, sharpened outputs of each view into the student's of the other.

        Args:
            view1: First global view, passed unchanged to both backbones.
            view2: Second global view.

        Returns:
            Loss, metrics (``loss``, ``teacher_entropy``, ``teacher_temp``, ``momentum``) and view-1 student
            features.
        """
        f1, f2 = self.embed(view1), self.embed(view2)
        s1, s2 = self.head(f1), self.head(f2)
        t1, t2 = self.momentum_outputs(view1, view2)
        with torch.no_grad():
            # Computed before the loss call, which moves the centre. The paper monitors this entropy to tell
            # the two collapses apart: towards log(out_dim) is uniform collapse, towards 0 one-prototype.
            log_p = F.log_softmax((torch.cat([t1, t2]) - self.loss_fn.center) / self.teacher_temp, dim=-1)
            teacher_entropy = -(log_p.exp() * log_p).sum(dim=-1).mean()
        loss = self.loss_fn([s1, s2], [t1, t2], teacher_temp=self.teacher_temp)
        metric_values = dict(
            loss=loss, teacher_entropy=teacher_entropy, teacher_temp=self.teacher_temp, momentum=self.momentum
        )
        return MethodOutput(loss=loss, features=f1.detach(), metric_values=metric_values)

    def before_optimizer_step(self, step: int, total_steps: int) -> None:
        """Clip the student's gradients per parameter and hold the prototypes still early on (the paper's code)."""
        if self.cfg.clip_grad > 0:
            for p in (*self.backbone.parameters(), *self.head.parameters()):
                if p.grad is not None:
                    # Per parameter, as DINO's `clip_gradients`, not one global norm.
                    torch.nn.utils.clip_grad_norm_(p, self.cfg.clip_grad)
        if step < self.cfg.freeze_last_layer_frac * total_steps:
            for frozen in (self.head.prototypes, self.head.prototype_scale):
                if frozen is not None:
                    frozen.grad = None  # no gradient: AdamW skips the parameter, weight decay included

    def on_step_end(self, step: int, total_steps: int) -> None:
        """EMA-update the teacher and set the teacher temperature for the next step (``step + 1``)."""
        super().on_step_end(step, total_steps)
        self.teacher_temp = self.teacher_temperature(step + 1, total_steps)
