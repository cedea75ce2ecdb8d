"""Probe metrics and the reference points every probe number must be read against.

A probe accuracy means little without the majority-class rate of the same split (a probe that predicts the
most frequent class scores exactly that) and without knowing which classes the split contains. This module
computes ACC / macro one-vs-rest AUC from class probabilities, the per-split reference points (majority-class
ACC, chance AUC 0.5, classes present) and the loud warnings the report prints.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = [
    "CHANCE_AUC",
    "TestSplitAccessError",
    "classification_metrics",
    "probe_warnings",
    "split_reference",
]

#: AUC of an uninformative score (the same for every class count under macro one-vs-rest).
CHANCE_AUC = 0.5


class TestSplitAccessError(RuntimeError):
    """Raised when the test split is used where it must not be (selection, fitting, a second test)."""

    __test__ = False  # not a pytest test class, despite the name


def _macro_ovr_auc(y: np.ndarray, proba: np.ndarray) -> tuple[float, list[int], list[str]]:
    num_classes = proba.shape[1]
    present = np.unique(y)
    if present.size < 2:
        return (
            float("nan"),
            [int(c) for c in present],
            [f"only class(es) {present.tolist()} present in y_true; AUC is undefined (NaN)"],
        )
    if num_classes == 2:
        return float(roc_auc_score(y, proba[:, 1])), [0, 1], []
    if present.size == num_classes:
        auc = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=np.arange(num_classes))
        return float(auc), list(range(num_classes)), []
    # scikit-learn's "ovr" raises when a class is absent; macro-average over the classes that are
    # present instead (each term is the same one-vs-rest AUC scikit-learn would compute).
    absent = sorted(set(range(num_classes)) - {int(c) for c in present})
    per_class = [roc_auc_score((y == c).astype(np.int64), proba[:, c]) for c in present]
    warning = f"class(es) {absent} absent from y_true; AUC is the macro average over the {present.size} present classes"
    return float(np.mean(per_class)), [int(c) for c in present], [warning]


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Accuracy and macro one-vs-rest ROC AUC from class probabilities.

    AUC: binary problems use ``proba[:, 1]``; multi-class problems the macro one-vs-rest AUC. If a class is
    absent from ``y_true`` the AUC averages over the present classes (with a warning); with fewer than two
    present classes it is NaN (with a warning).

    Args:
        y_true: Labels, shape ``(N,)``, integers in ``[0, C)``.
        proba: Class probabilities, shape ``(N, C)``, ``C >= 2``, rows summing to 1.

    Returns:
        ``{"n", "acc", "auc", "auc_classes", "warnings"}``.

    Raises:
        ValueError: On mismatched shapes, ``C < 2``, labels outside ``[0, C)``, or probabilities that are
            negative, non-finite or do not sum to 1 per row.
    """
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must have shape (N, C) with C >= 2, got {p.shape}")
    if y.ndim != 1 or y.shape[0] != p.shape[0] or y.shape[0] == 0:
        raise ValueError(f"y_true must have shape (N,) = ({p.shape[0]},) with N >= 1, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must be integer labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got range [{y.min()}, {y.max()}]")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("proba must be finite and non-negative")
    # No renormalisation: dividing by a row sum of 1 ± 1 ulp would perturb exactly tied scores and
    # change the AUC (ties count 1/2). scikit-learn applies the same tolerance check.
    if not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError("rows of proba must sum to 1 (class probabilities, e.g. a softmax)")
    acc = float(np.mean(p.argmax(axis=1) == y))
    auc, classes, warnings = _macro_ovr_auc(y, p)
    return {"n": int(y.shape[0]), "acc": acc, "auc": auc, "auc_classes": classes, "warnings": warnings}


def split_reference(y: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Reference points of one split: size, classes present, majority-class ACC and chance AUC.

    The majority class is the split's own most frequent label, so ``majority_acc`` is the accuracy a
    constant predictor would reach *if it guessed that class*; a probe at or below it has learned nothing
    usable from the features.
    """
    y = np.asarray(y)
    counts = np.bincount(y, minlength=num_classes)
    return {
        "n": int(y.size),
        "classes_present": int((counts > 0).sum()),
        "num_classes": int(num_classes),
        "class_counts": [int(c) for c in counts],
        "majority_acc": float(counts.max() / max(y.size, 1)),
        "chance_auc": CHANCE_AUC,
    }


def probe_warnings(references: dict[str, dict[str, Any]], test: dict[str, Any]) -> list[str]:
    """Loud warnings for a report row: classes absent from a split, a test ACC not above majority."""
    out: list[str] = []
    for split, ref in references.items():
        if ref["classes_present"] < ref["num_classes"]:
            absent = [c for c, k in enumerate(ref["class_counts"]) if k == 0]
            out.append(f"WARNING: class(es) {absent} absent from the {split} split")
    majority = references["test"]["majority_acc"] if "test" in references else None
    if majority is not None and test["acc"] <= majority + 1e-12:
        out.append(
            f"WARNING: probe test ACC {100 * test['acc']:.1f} is not above the majority-class rate "
            f"{100 * majority:.1f}; the features carry no usable linear signal here"
        )
    if math.isfinite(test.get("auc", float("nan"))) and test["auc"] <= CHANCE_AUC:
        out.append(f"WARNING: probe test AUC {test['auc']:.3f} is not above chance ({CHANCE_AUC})")
    return out


def json_safe(obj: Any) -> Any:
    """Recursively turn tuples into lists, numpy scalars into Python numbers and NaN/inf into None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
