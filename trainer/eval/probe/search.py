"""Choosing the probe's regularisation on the validation split, never on test.

The probe is an L2-regularised multinomial logistic regression (scikit-learn, L-BFGS) on features standardised
with the *training* split's mean and standard deviation. :func:`select_hyperparameters` fits one probe per
inverse regularisation strength ``C`` of a wide logarithmic grid (1e-4 … 1e2 by default) on ``"train"``, scores
each on ``"val"`` and issues a :class:`Selection`; it refuses a ``"test"`` set outright. A wide grid matters:
on small medical sets with 512-d features a narrow weight-decay grid still overfits and lands below the
majority-class rate.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from topo.trainer.eval.features import FeatureSet, check_disjoint
from topo.trainer.eval.probe.metrics import TestSplitAccessError, classification_metrics, json_safe

__all__ = ["DEFAULT_CS", "METRICS", "GridPoint", "Selection", "select_hyperparameters"]

#: Validation metrics the regularisation can be selected on.
METRICS: tuple[str, ...] = ("acc", "auc")
#: Inverse L2 strengths tried (13 points, half a decade apart, 1e-4 … 1e2).
DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 2, 13))
#: L-BFGS iteration cap; standardised features converge well below it.
DEFAULT_MAX_ITER = 2000


@dataclass(frozen=True)
class GridPoint:
    """Validation result of one ``C`` of the grid (``converged`` False when L-BFGS hit its cap)."""

    c: float
    val_acc: float
    val_auc: float
    converged: bool = True
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (NaN becomes ``None``)."""
        return json_safe(
            {
                "C": self.c,
                "val_acc": self.val_acc,
                "val_auc": self.val_auc,
                "converged": self.converged,
                "warnings": list(self.warnings),
            }
        )


# Identity-keyed registry: a Selection counts as "issued" only if this module created it, so one built by
# hand, by dataclasses.replace or by copy.deepcopy is refused by fit_probe.
ISSUED_SELECTIONS: weakref.WeakKeyDictionary[Selection, dict[str, bool]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class Selection:
    """A ``C`` chosen on the validation split by :func:`select_hyperparameters` (identity-compared).

    Attributes:
        c: Selected inverse L2 strength.
        max_iter: L-BFGS iteration cap.
        metric: Validation metric maximised (``"acc"`` or ``"auc"``; ties go to the smaller ``C``).
        num_classes: Number of output classes ``C``.
        val_score: The selected point's value of ``metric`` on validation.
        grid: Every point tried, in increasing ``C``.
        train_fingerprint: Content hash of the training set.
        val_fingerprint: Content hash of the validation set.
    """

    c: float
    max_iter: int
    metric: str
    num_classes: int
    val_score: float
    grid: tuple[GridPoint, ...]
    train_fingerprint: str = field(repr=False)
    val_fingerprint: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of the selection and its grid."""
        return json_safe(
            {
                "probe": "standardised features + L2 logistic regression (scikit-learn, lbfgs)",
                "C": self.c,
                "max_iter": self.max_iter,
                "metric": self.metric,
                "num_classes": self.num_classes,
                "val_score": self.val_score,
                "grid": [p.to_dict() for p in self.grid],
                "train_fingerprint": self.train_fingerprint,
                "val_fingerprint": self.val_fingerprint,
            }
        )


def standardise_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of the training split (constant features: std 1)."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    # A constant feature carries no information; dividing by 1 keeps it at 0 instead of inf/NaN.
    std = np.where(std < 1e-8, 1.0, std)
    return mean, std


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` in float64 (L-BFGS on float32 stalls earlier)."""
    return (np.asarray(x, dtype=np.float64) - mean) / std


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> tuple[LogisticRegression, bool]:
    """Fit the L2 logistic regression; returns the model and whether L-BFGS converged."""
    model = LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter, tol=1e-6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model, converged


def full_proba(model: LogisticRegression, x: np.ndarray, num_classes: int) -> np.ndarray:
    """Class probabilities with one column per dataset class (a class absent from train gets 0)."""
    proba = np.zeros((x.shape[0], num_classes), dtype=np.float64)
    proba[:, model.classes_] = model.predict_proba(x)
    return proba


def check_number_grid(name: str, values: Sequence[float]) -> tuple[float, ...]:
    """A non-empty grid of finite positive numbers, sorted increasingly."""
    try:
        out = tuple(sorted(float(v) for v in values))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from exc
    if not out:
        raise ValueError(f"{name} must not be empty")
    for v in out:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} values must be finite and > 0, got {v!r}")
    return out


def require_split(fs: FeatureSet, expected: str, role: str) -> None:
    """``fs`` must be a FeatureSet of split ``expected``; the test split raises TestSplitAccessError."""
    if not isinstance(fs, FeatureSet):
        raise ValueError(f"{role} must be a FeatureSet, got {type(fs).__name__}")
    if fs.split == "test":
        raise TestSplitAccessError(
            f"{role} has split 'test': the test split may only be read by evaluate_test_once(), "
            "after the regularisation was selected on 'val'"
        )
    if fs.split != expected:
        raise ValueError(f"{role} must have split {expected!r}, got {fs.split!r}")


def check_labels(fs: FeatureSet, num_classes: int) -> None:
    """Labels of ``fs`` must lie below ``num_classes``."""
    top = int(fs.y.max())
    if top >= num_classes:
        raise ValueError(
            f"split {fs.split!r} has label {top} but num_classes={num_classes}; "
            "pass num_classes= the dataset's class count"
        )


def _check_options(train: FeatureSet, val: FeatureSet, metric: str, max_iter: int) -> None:
    require_split(train, "train", "train")
    require_split(val, "val", "val")
    if train.dim != val.dim:
        raise ValueError(f"train has feature dimension {train.dim} but val has {val.dim}")
    check_disjoint(train, val)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if np.unique(train.y).size < 2:
        raise ValueError(f"the train split has a single class ({int(train.y[0])}); a probe cannot be fitted")


def select_hyperparameters(
    train: FeatureSet,
    val: FeatureSet,
    *,
    cs: Sequence[float] = DEFAULT_CS,
    max_iter: int = DEFAULT_MAX_ITER,
    metric: str = "acc",
    num_classes: int | None = None,
) -> Selection:
    """Fit one probe per ``C`` on ``train``, score it on ``val`` and issue the best as a :class:`Selection`.

    Args:
        train: Split ``"train"``.
        val: Split ``"val"``, same feature dimension, no shared samples.
        cs: Inverse L2 strengths to try (each > 0).
        max_iter: L-BFGS iteration cap.
        metric: ``"acc"`` or ``"auc"``; the other metric breaks ties, then the smaller ``C``.
        num_classes: Number of classes; default ``max(label in train or val) + 1``.

    Returns:
        The issued :class:`Selection` (including the full validation grid).

    Raises:
        TestSplitAccessError: If either set is the test split.
        ValueError: On wrong split names, mismatched dimensions, shared samples, bad options, a one-class
            training split, or ``metric="auc"`` when the validation AUC is undefined everywhere.
    """
    _check_options(train, val, metric, max_iter)
    grid_c = check_number_grid("cs", cs)
    if num_classes is None:
        num_classes = int(max(train.y.max(), val.y.max())) + 1
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    check_labels(train, num_classes)
    check_labels(val, num_classes)

    mean, std = standardise_stats(train.x)
    xt, xv = standardise(train.x, mean, std), standardise(val.x, mean, std)
    grid: list[GridPoint] = []
    for c in grid_c:
        model, converged = fit_logistic(xt, np.asarray(train.y), c, max_iter)
        m = classification_metrics(val.y, full_proba(model, xv, num_classes))
        grid.append(GridPoint(c, m["acc"], m["auc"], converged, tuple(m["warnings"])))

    def _rank(v: float) -> float:
        return -math.inf if math.isnan(v) else v

    primary = [p.val_acc if metric == "acc" else p.val_auc for p in grid]
    secondary = [p.val_auc if metric == "acc" else p.val_acc for p in grid]
    if all(math.isnan(v) for v in primary):
        raise ValueError("validation AUC is undefined for every C (fewer than two classes in val); use metric='acc'")
    # Ties go to the earliest (smallest C, strongest regularisation): the simpler probe.
    best = max(range(len(grid)), key=lambda i: (_rank(primary[i]), _rank(secondary[i]), -i))
    sel = Selection(
        c=grid[best].c,
        max_iter=max_iter,
        metric=metric,
        num_classes=num_classes,
        val_score=primary[best],
        grid=tuple(grid),
        train_fingerprint=train.fingerprint,
        val_fingerprint=val.fingerprint,
    )
    ISSUED_SELECTIONS[sel] = {"tested": False}
    return sel
