"""Seeing and steering the MoE gate while training: per-epoch statistics and the importance (balance) loss.

A collapsed gate (one expert takes almost all the weight for every sample) makes the fusion a single expert; these
numbers make it visible in ``log.csv``, ``gates.csv`` and TensorBoard:

* ``gate_mean_<expert>``: mean weight of each expert over the epoch's training samples (both views);
* ``gate_entropy``: mean per-sample entropy of the gate, in nats (``log n_experts`` = uniform, 0 = one expert);
* ``gate_top_<expert>``: fraction of samples whose largest weight is that expert's.

``--gate-balance λ`` adds ``λ · CV(importance)²`` to the loss, where ``importance`` is each expert's summed gate
weight over the batch (Shazeer et al. 2017, "Outrageously large neural networks", Sec. 4): zero when every expert
gets the same total weight. The paper trains with λ = 0 (the default).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def importance_loss(weights: Tensor) -> Tensor:
    """``CV²`` of the per-expert importance (column sums) of gate weights ``(N, n_experts)``."""
    imp = weights.sum(0)
    if imp.numel() < 2:
        return weights.new_zeros(())
    return imp.var(unbiased=False) / (imp.mean() ** 2 + 1e-10)


class GateStats:
    """Running sums of the gate statistics over one epoch (reset with :meth:`reset`)."""

    def __init__(self, experts: tuple[str, ...]) -> None:
        self.experts = experts
        self.reset()

    def reset(self) -> None:
        n = len(self.experts)
        self.n = 0
        self.sum_w = torch.zeros(n, dtype=torch.float64)
        self.top = torch.zeros(n, dtype=torch.float64)
        self.sum_entropy = 0.0

    def update(self, weights: Tensor) -> None:
        w = weights.detach().double().cpu()
        self.n += w.shape[0]
        self.sum_w += w.sum(0)
        self.top += torch.bincount(w.argmax(1), minlength=len(self.experts)).double()
        self.sum_entropy += float(-(w * torch.log(w.clamp_min(1e-12))).sum())

    def summary(self) -> dict[str, float]:
        """``{gate_mean_<e>, gate_entropy, gate_top_<e>}`` (NaN before any update)."""
        n = max(1, self.n)
        nan = math.nan if self.n == 0 else None
        out = {f"gate_mean_{e}": nan or float(self.sum_w[i] / n) for i, e in enumerate(self.experts)}
        out["gate_entropy"] = nan or self.sum_entropy / n
        out.update({f"gate_top_{e}": nan or float(self.top[i] / n) for i, e in enumerate(self.experts)})
        return out

    def columns(self) -> list[str]:
        return list(self.summary())
