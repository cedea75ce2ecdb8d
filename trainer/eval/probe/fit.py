"""Fitting the selected probe on the training split, and the one and only look at the test split.

:func:`fit_probe` only accepts a :class:`~topo.trainer.eval.probe.search.Selection` issued in this process;
:func:`evaluate_test_once` is the only function that reads a ``"test"`` set, once per probe and once per
selection, so neither ``C`` nor anything else can be picked by looking at test numbers. The guards prevent
accidents (a checkpoint or hyper-parameter chosen on test), not a determined user.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from topo.trainer.eval.features import FeatureSet, check_disjoint
from topo.trainer.eval.probe.metrics import TestSplitAccessError, classification_metrics
from topo.trainer.eval.probe.search import (
    ISSUED_SELECTIONS,
    Selection,
    check_labels,
    fit_logistic,
    full_proba,
    require_split,
    standardise,
    standardise_stats,
)

__all__ = ["LinearProbe", "evaluate_test_once", "fit_probe"]

_ISSUED_PROBES: weakref.WeakKeyDictionary[LinearProbe, dict[str, bool]] = weakref.WeakKeyDictionary()


class LinearProbe:
    """A fitted logistic regression on standardised features. Produced only by :func:`fit_probe`.

    Attributes:
        selection: The :class:`Selection` it was fitted from.
        mean: Training-split feature mean, shape ``(D,)``.
        std: Training-split feature standard deviation (constant features: 1), shape ``(D,)``.
        model: The fitted scikit-learn ``LogisticRegression``.
        converged: Whether L-BFGS converged within ``selection.max_iter``.
    """

    def __init__(
        self,
        *,
        selection: Selection,
        mean: np.ndarray,
        std: np.ndarray,
        model: LogisticRegression,
        converged: bool,
        train_split: FeatureSet,
    ) -> None:
        self.selection = selection
        self.mean = mean
        self.std = std
        self.model = model
        self.converged = converged
        # Kept (read-only views, no copy) so the test set can be checked for overlap with train.
        self._train = train_split

    @property
    def num_classes(self) -> int:
        """Number of output classes ``C``."""
        return int(self.selection.num_classes)

    @property
    def dim(self) -> int:
        """Input feature dimension ``D``."""
        return int(self.mean.shape[0])

    @property
    def tested(self) -> bool:
        """Whether :func:`evaluate_test_once` has already been called on this probe."""
        state = _ISSUED_PROBES.get(self)
        return bool(state and state["tested"])

    def _proba(self, x: np.ndarray) -> np.ndarray:
        return full_proba(self.model, standardise(x, self.mean, self.std), self.num_classes)

    def _check_input(self, fs: FeatureSet) -> None:
        if not isinstance(fs, FeatureSet):
            raise ValueError(f"expected a FeatureSet, got {type(fs).__name__}")
        if fs.dim != self.dim:
            raise ValueError(f"split {fs.split!r} has feature dimension {fs.dim}, the probe expects {self.dim}")
        check_labels(fs, self.num_classes)

    def predict_proba(self, fs: FeatureSet) -> np.ndarray:
        """Class probabilities ``(N, C)`` for a train or val set (test: :func:`evaluate_test_once`)."""
        if isinstance(fs, FeatureSet) and fs.split == "test":
            raise TestSplitAccessError("the test split is only readable through evaluate_test_once()")
        self._check_input(fs)
        return self._proba(fs.x)

    def evaluate(self, fs: FeatureSet) -> dict[str, Any]:
        """Metrics (see :func:`classification_metrics`) on a train or val set, plus ``"split"``."""
        proba = self.predict_proba(fs)
        return {"split": fs.split, **classification_metrics(fs.y, proba)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (hyper-parameters, not weights)."""
        return {
            "C": self.selection.c,
            "max_iter": self.selection.max_iter,
            "converged": self.converged,
            "num_classes": self.num_classes,
            "dim": self.dim,
        }

    def __repr__(self) -> str:
        return (
            f"LinearProbe(dim={self.dim}, num_classes={self.num_classes}, C={self.selection.c}, "
            f"converged={self.converged}, tested={self.tested})"
        )


def fit_probe(train: FeatureSet, selection: Selection) -> LinearProbe:
    """Fit the selected ``C`` on the training split (L-BFGS is deterministic: the grid entry is reproduced).

    Raises:
        TestSplitAccessError: If ``train`` is the test split, or ``selection`` was not issued by
            :func:`~topo.trainer.eval.probe.search.select_hyperparameters` (hand-made, replaced or copied).
        ValueError: If ``train`` is not the set the selection was made with.
    """
    require_split(train, "train", "train")
    if not isinstance(selection, Selection) or selection not in ISSUED_SELECTIONS:
        raise TestSplitAccessError(
            "fit_probe needs a Selection returned by select_hyperparameters() in this process; "
            "hand-made, replaced or copied selections are refused"
        )
    if train.fingerprint != selection.train_fingerprint:
        raise ValueError("train differs from the training set this selection was made with")
    mean, std = standardise_stats(train.x)
    model, converged = fit_logistic(
        standardise(train.x, mean, std), np.asarray(train.y), selection.c, selection.max_iter
    )
    probe = LinearProbe(selection=selection, mean=mean, std=std, model=model, converged=converged, train_split=train)
    _ISSUED_PROBES[probe] = {"tested": False}
    return probe


def evaluate_test_once(probe: LinearProbe, test: FeatureSet) -> dict[str, Any]:
    """Evaluate a fitted probe on the test split — once per probe and once per selection.

    Returns:
        ``{"split": "test", "n", "acc", "auc", "auc_classes", "warnings"}``.

    Raises:
        TestSplitAccessError: If the probe was not produced by :func:`fit_probe`, was already tested, or
            another probe fitted from the same selection was already tested.
        ValueError: If ``test`` is not the test split, has another feature dimension, labels outside the
            probe's classes, or shares samples with the training split.
    """
    if not isinstance(probe, LinearProbe) or probe not in _ISSUED_PROBES:
        raise TestSplitAccessError("evaluate_test_once needs a LinearProbe returned by fit_probe()")
    if not isinstance(test, FeatureSet) or test.split != "test":
        got = test.split if isinstance(test, FeatureSet) else type(test).__name__
        raise ValueError(f"evaluate_test_once takes the 'test' split, got {got!r}; use probe.evaluate()")
    probe_state = _ISSUED_PROBES[probe]
    sel_state = ISSUED_SELECTIONS.get(probe.selection)
    if probe_state["tested"]:
        raise TestSplitAccessError("this probe was already evaluated on the test split")
    if sel_state is None or sel_state["tested"]:
        raise TestSplitAccessError(
            "a probe fitted from this selection was already evaluated on the test split; refitting "
            "and testing again would allow choosing on test"
        )
    probe._check_input(test)
    check_disjoint(probe._train, test)
    # Mark before computing: the numbers must not be obtainable twice, even after an exception.
    probe_state["tested"] = True
    sel_state["tested"] = True
    return {"split": "test", **classification_metrics(test.y, probe._proba(test.x))}
