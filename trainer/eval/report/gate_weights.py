"""Gate weights of the mixture of experts: their mean and std per expert, and the bar chart (the paper's Fig. 3)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _check_gate_inputs(weights: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"weights must have shape (N, n_experts) with N, n_experts >= 1, got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    if labels is None:
        return w, None
    lab = np.asarray(labels)
    if lab.shape != (w.shape[0],) or not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
        raise ValueError(f"labels must be non-negative integers of shape ({w.shape[0]},), got {lab.shape} {lab.dtype}")
    return w, lab


def gate_weight_summary(weights: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean and std of the gate weight per expert, overall and per class.

    Args:
        weights: Gate weights, shape ``(N, n_experts)``.
        labels: Optional class labels, shape ``(N,)``.

    Returns:
        ``{"all": (2, n_experts) [mean; std]}`` plus ``{"class_<c>": ...}`` for each present class
        ``c`` (ascending). The std is the population std (``ddof=0``) of the per-sample weights.
    """
    w, lab = _check_gate_inputs(weights, labels)
    out = {"all": np.stack([w.mean(axis=0), w.std(axis=0)])}
    if lab is not None:
        for c in np.unique(lab):
            wc = w[lab == c]
            out[f"class_{int(c)}"] = np.stack([wc.mean(axis=0), wc.std(axis=0)])
    return out


def plot_gate_weights(
    weights: np.ndarray,
    expert_names: Sequence[str],
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    out_png: str | Path,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Bar chart of the mean gate weight per expert (the paper's Fig. 3), optionally per class.

    Uses matplotlib's Agg canvas directly (no pyplot, so no global backend state and no display).

    Args:
        weights: Gate weights, shape ``(N, n_experts)``.
        expert_names: One name per expert.
        labels: Optional class labels, shape ``(N,)``: adds one bar group per present class next to
            the "all" group.
        class_names: Optional names indexed by class id (``len > max label``).
        out_png: Output PNG path (parent directories are created).
        title: Figure title.
        dpi: Resolution.

    Returns:
        The PNG path.

    Raises:
        ValueError: On mismatched shapes, non-finite weights, or too few names.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = gate_weight_summary(weights, labels)
    n_experts = summary["all"].shape[1]
    names = [str(n) for n in expert_names]
    if len(names) != n_experts:
        raise ValueError(f"expert_names has {len(names)} names for {n_experts} experts")
    group_keys = list(summary)
    group_labels = ["all"]
    for key in group_keys[1:]:
        c = int(key.split("_", 1)[1])
        if class_names is not None:
            if c >= len(class_names):
                raise ValueError(f"class_names has {len(class_names)} entries but labels contain class {c}")
            group_labels.append(str(class_names[c]))
        else:
            group_labels.append(f"class {c}")

    fig = Figure(figsize=(max(4.0, 1.5 + 0.35 * n_experts * len(group_keys)), 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if len(group_keys) == 1:
        mean, std = summary["all"]
        ax.bar(np.arange(n_experts), mean, yerr=std, capsize=3, color="tab:blue")
        ax.set_xticks(np.arange(n_experts), names)
    else:
        width = 0.8 / n_experts
        x = np.arange(len(group_keys))
        for e in range(n_experts):
            means = [summary[g][0, e] for g in group_keys]
            ax.bar(x + (e - (n_experts - 1) / 2) * width, means, width, label=names[e])
        ax.set_xticks(x, group_labels)
        ax.legend(title="expert", fontsize="small")
    ax.set_ylabel("mean gate weight")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out
