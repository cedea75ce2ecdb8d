"""The full probe protocol and its report: select on val, fit on train, test once, with reference points.

:func:`linear_probe` returns a :class:`ProbeResult` carrying, besides the metrics, each split's majority-class
ACC, chance AUC and classes present, plus loud warnings (a class absent from a split, a test ACC not above the
majority rate) that every report row prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topo.trainer.eval.features import FeatureSet, check_disjoint
from topo.trainer.eval.probe.fit import evaluate_test_once, fit_probe
from topo.trainer.eval.probe.metrics import json_safe, probe_warnings, split_reference
from topo.trainer.eval.probe.search import GridPoint, Selection, require_split, select_hyperparameters

__all__ = ["ProbeResult", "linear_probe"]


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`linear_probe`.

    Attributes:
        selection: The ``C`` chosen on validation (with the full grid).
        train: Metrics of the final probe on the training split.
        val: Metrics of the final probe on the validation split (equals the selected grid entry).
        test: Metrics of the final probe on the test split (computed once).
        references: Per split: ``n``, ``classes_present``, ``class_counts``, ``majority_acc``, ``chance_auc``.
        warnings: Loud warnings for the report row (empty when all is well).
    """

    selection: Selection
    train: dict[str, Any]
    val: dict[str, Any]
    test: dict[str, Any]
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def grid(self) -> tuple[GridPoint, ...]:
        """Validation metrics of every ``C`` tried."""
        return self.selection.grid

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (NaN becomes ``None``)."""
        return json_safe(
            {
                "selection": self.selection.to_dict(),
                "train": self.train,
                "val": self.val,
                "test": self.test,
                "references": self.references,
                "warnings": list(self.warnings),
            }
        )


def linear_probe(train: FeatureSet, val: FeatureSet, test: FeatureSet, **kw: Any) -> ProbeResult:
    """Full protocol: select ``C`` on val, fit on train, evaluate on test once.

    Args:
        train: Split ``"train"``.
        val: Split ``"val"``.
        test: Split ``"test"``.
        **kw: Forwarded to :func:`select_hyperparameters` (``cs``, ``max_iter``, ``metric``, ``num_classes``).

    Returns:
        A :class:`ProbeResult`.

    Raises:
        TestSplitAccessError: If ``train`` or ``val`` is the test split.
        ValueError: On wrong split names, shared samples between splits, or bad options.
    """
    require_split(train, "train", "train")
    require_split(val, "val", "val")
    if not isinstance(test, FeatureSet) or test.split != "test":
        raise ValueError(f"test must be a FeatureSet with split 'test', got {test!r}")
    check_disjoint(val, test)
    selection = select_hyperparameters(train, val, **kw)
    probe = fit_probe(train, selection)
    test_metrics = evaluate_test_once(probe, test)
    refs = {fs.split: split_reference(fs.y, selection.num_classes) for fs in (train, val, test)}
    loud = probe_warnings(refs, test_metrics)
    if not probe.converged:
        loud.append(f"WARNING: L-BFGS did not converge within {selection.max_iter} iterations")
    return ProbeResult(
        selection=selection,
        train=probe.evaluate(train),
        val=probe.evaluate(val),
        test=test_metrics,
        references=refs,
        warnings=tuple(loud),
    )
