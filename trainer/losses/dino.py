"""DINO's self-distillation loss: cross-entropy between a centred, sharpened teacher and the student.

Reference: M. Caron, H. Touvron, I. Misra, H. Jégou, J. Mairal, P. Bojanowski, A. Joulin, "Emerging
Properties in Self-Supervised Vision Transformers", ICCV 2021 (arXiv:2104.14294), Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from topo.trainer.dist import all_reduce_mean

__all__ = ["DINOLoss"]


class DINOLoss(nn.Module):
    """DINO loss ``H(t, s) = −Σ softmax((t − C)/τ_t) · log_softmax(s/τ_s)`` with an EMA centre ``C``.

    For every ordered pair of *different* views ``(i, j)``, the teacher output of view ``i`` is the target
    for the student output of view ``j``; the loss averages ``H`` over the batch and over those pairs.
    With two views this is Algorithm 1's ``H(t1, s2)/2 + H(t2, s1)/2``. Teacher outputs are detached.

    The centre is the module's only state (a ``(1, out_dim)`` buffer, saved in ``state_dict``). In
    training mode, every forward updates it after computing the loss, as in Algorithm 1:
    ``C ← m·C + (1 − m)·mean(teacher outputs)``. The teacher temperature is an argument, so the method
    owns its warm-up schedule.

    Across ranks: the loss itself needs no communication; the batch mean used for the centre update is
    averaged over ranks with :func:`~topo.trainer.dist.all_reduce_mean` (every rank must pass the same
    batch size), so the centre stays identical on all ranks.

    Args:
        out_dim: Number of prototypes ``K`` (width of the head output), >= 1.
        student_temp: Student temperature ``τ_s``, > 0 (0.1 in the paper).
        center_momentum: Centre EMA momentum ``m``, in ``[0, 1]`` (0.9 in the paper).

    Raises:
        ValueError: If an argument is outside its range.

    Examples:
        >>> import torch
        >>> loss_fn = DINOLoss(out_dim=32)
        >>> s = [torch.randn(4, 32) for _ in range(2)]
        >>> t = [torch.randn(4, 32) for _ in range(2)]
        >>> loss_fn(s, t, teacher_temp=0.04).shape
        torch.Size([])
        >>> bool(loss_fn.center.abs().sum() > 0)  # updated from the teacher outputs
        True
    """

    center: Tensor

    def __init__(self, out_dim: int, *, student_temp: float = 0.1, center_momentum: float = 0.9) -> None:
        super().__init__()
        if out_dim < 1:
            raise ValueError(f"out_dim must be >= 1, got {out_dim}")
        if not student_temp > 0:
            raise ValueError(f"student_temp must be > 0, got {student_temp}")
        if not 0.0 <= center_momentum <= 1.0:
            raise ValueError(f"center_momentum must be in [0, 1], got {center_momentum}")
        self.out_dim = out_dim
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_out: Sequence[Tensor], teacher_out: Sequence[Tensor], teacher_temp: float) -> Tensor:
        """Compute the loss over all pairs of different views, then (in training mode) update the centre.

        Args:
            student_out: Student head outputs (logits), one ``(B, out_dim)`` tensor per view.
            teacher_out: Teacher head outputs, one ``(B, out_dim)`` tensor per view; ``teacher_out[i]``
                and ``student_out[i]`` come from the same view. At most as many as ``student_out``
                (DINO's teacher sees only the global views).
            teacher_temp: Teacher temperature ``τ_t`` for this step, > 0.

        Returns:
            Scalar loss tensor.

        Raises:
            ValueError: If ``teacher_temp <= 0``, there are fewer than two student views or no teacher
                view, more teacher than student views, or a tensor is not ``(B, out_dim)`` with one ``B``.
        """
        if not teacher_temp > 0:
            raise ValueError(f"teacher_temp must be > 0, got {teacher_temp}")
        if len(student_out) < 2 or not 1 <= len(teacher_out) <= len(student_out):
            raise ValueError(
                f"need >= 2 student views and 1..{len(student_out)} teacher views, "
                f"got {len(student_out)} and {len(teacher_out)}"
            )
        shapes = {tuple(t.shape) for t in [*student_out, *teacher_out]}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[1] != self.out_dim:
            raise ValueError(f"every output must have one shape (B, {self.out_dim}); got shapes {sorted(shapes)}")

        log_p_student = [F.log_softmax(s / self.student_temp, dim=-1) for s in student_out]
        p_teacher = [F.softmax((t.detach() - self.center) / teacher_temp, dim=-1) for t in teacher_out]
        total = student_out[0].new_zeros(())
        n_terms = 0
        for i, t in enumerate(p_teacher):
            for j, log_s in enumerate(log_p_student):
                if i == j:
                    continue  # a view is never its own target
                total = total + torch.sum(-t * log_s, dim=-1).mean()
                n_terms += 1
        if self.training:
            self.update_center(torch.cat([t.detach() for t in teacher_out]))
        return total / n_terms

    @torch.no_grad()
    def update_center(self, teacher_out: Tensor) -> None:
        """EMA update of the centre with the (cross-rank) batch mean of ``teacher_out`` ``(N, out_dim)``."""
        batch_center = all_reduce_mean(teacher_out.mean(dim=0, keepdim=True))
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
