"""Run records: the test metrics of one (dataset, method, variant, pretraining seed) run, saved as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topo.trainer.eval.probe import ProbeResult

#: The two variants compared in Table 3.
VARIANTS: tuple[str, ...] = ("baseline", "topocl")
#: Name of the dataset-average column.
AVG = "Avg"

_RESULTS_FORMAT = "topo.run_results"
_VERSION = 1


@dataclass(frozen=True)
class RunResult:
    """Test metrics of one (dataset, method, variant, pretraining seed) run.

    Attributes:
        dataset: Dataset name, e.g. ``"BreastMNIST"``.
        method: Pretraining method, e.g. ``"SimCLR"``.
        variant: ``"baseline"`` or ``"topocl"``.
        seed: Pretraining seed (the pairing key of the t-tests).
        acc: Test accuracy in ``[0, 1]``.
        auc: Test macro one-vs-rest AUC in ``[0, 1]``.
        extras: JSON-serialisable extra information (selected hyper-parameters, val metrics, ...).
    """

    dataset: str
    method: str
    variant: str
    seed: int
    acc: float
    auc: float
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("dataset", "method"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"RunResult.{name} must be a non-empty string, got {value!r}")
        if self.dataset == AVG:
            raise ValueError(f"RunResult.dataset {AVG!r} is reserved for the dataset-average column")
        if self.variant not in VARIANTS:
            raise ValueError(f"RunResult.variant must be one of {VARIANTS}, got {self.variant!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"RunResult.seed must be an int, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        for name in ("acc", "auc"):
            value = getattr(self, name)
            try:
                v = float(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"RunResult.{name} must be a number, got {value!r}") from exc
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"RunResult.{name} must be a finite fraction in [0, 1], got {value!r}")
            object.__setattr__(self, name, v)
        if not isinstance(self.extras, dict):
            raise ValueError(f"RunResult.extras must be a dict, got {type(self.extras).__name__}")
        try:
            json.dumps(self.extras, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"RunResult.extras must be JSON-serialisable (no NaN): {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dictionary."""
        return {
            "dataset": self.dataset,
            "method": self.method,
            "variant": self.variant,
            "seed": self.seed,
            "acc": self.acc,
            "auc": self.auc,
            "extras": json.loads(json.dumps(self.extras)),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunResult:
        """Inverse of :meth:`to_dict`."""
        missing = {"dataset", "method", "variant", "seed", "acc", "auc"} - set(d)
        if missing:
            raise ValueError(f"RunResult record is missing field(s) {sorted(missing)}")
        return cls(
            dataset=d["dataset"],
            method=d["method"],
            variant=d["variant"],
            seed=d["seed"],
            acc=d["acc"],
            auc=d["auc"],
            extras=dict(d.get("extras") or {}),
        )


def run_result_from_probe(
    dataset: str,
    method: str,
    variant: str,
    seed: int,
    result: ProbeResult,
    extras: Mapping[str, Any] | None = None,
) -> RunResult:
    """Record the test metrics of a :func:`~topo.trainer.eval.probe.linear_probe` run.

    Args:
        dataset: Dataset name.
        method: Pretraining method.
        variant: ``"baseline"`` or ``"topocl"``.
        seed: Pretraining seed.
        result: The probe result; its test ACC/AUC become the record's metrics.
        extras: Additional JSON-serialisable fields; the probe's selection and val/test details are
            stored under ``"probe"``.

    Returns:
        The :class:`RunResult`.

    Raises:
        ValueError: If the test AUC is undefined (NaN) or another field is invalid.
    """
    if not math.isfinite(result.test["auc"]):
        raise ValueError(
            f"test AUC is undefined for {dataset}/{method}/{variant}/seed {seed}: {result.test['warnings']}"
        )
    info = {**dict(extras or {}), "probe": result.to_dict()}
    return RunResult(dataset, method, variant, seed, result.test["acc"], result.test["auc"], info)


def save_run_results(path: str | Path, results: Iterable[RunResult]) -> Path:
    """Write run records as one JSON file.

    Args:
        path: Output file.
        results: The records.

    Returns:
        The path written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": _RESULTS_FORMAT, "version": _VERSION, "results": [r.to_dict() for r in results]}
    out.write_text(json.dumps(doc, indent=1, allow_nan=False))
    return out


def load_run_results(path: str | Path) -> list[RunResult]:
    """Read the records written by :func:`save_run_results`.

    Args:
        path: JSON file.

    Returns:
        The records, in file order.

    Raises:
        ValueError: If the file is not a run-results document.
    """
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or doc.get("format") != _RESULTS_FORMAT:
        raise ValueError(f"{path} is not a {_RESULTS_FORMAT!r} document")
    return [RunResult.from_dict(d) for d in doc["results"]]
