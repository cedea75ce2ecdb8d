"""The numbers a user reports: the paper's Table 3, gate-weight plots (Fig. 3) and cost tables (Tables 6-7).

Table 3 compares, per pretraining method, the baseline and its TopoCL variant on every dataset:
ACC and AUC as mean ± sample std (``ddof=1``) over pretraining seeds, the difference of means
(Δ = TopoCL − baseline) and a two-sided paired t-test with runs paired by seed. The "Avg" column
first averages each seed's results over the datasets and then summarises those per-seed averages
the same way, so its t-test is also paired by seed.

Metric values are stored as fractions in ``[0, 1]``; the markdown shows percentages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from topo.trainer.eval.probe import ProbeResult
from topo.trainer.eval.stats import mean_std, paired_ttest

__all__ = [
    "AVG",
    "VARIANTS",
    "Cell",
    "Comparison",
    "MethodRow",
    "RunResult",
    "Table3",
    "VariantSummary",
    "build_table",
    "cost_table_markdown",
    "format_p",
    "from_json",
    "gate_weight_summary",
    "load_run_results",
    "model_cost",
    "plot_gate_weights",
    "run_result_from_probe",
    "save_run_results",
    "to_json",
    "to_markdown",
]

#: The two variants compared in Table 3.
VARIANTS: tuple[str, ...] = ("baseline", "topocl")
#: Name of the dataset-average column.
AVG = "Avg"

_RESULTS_FORMAT = "topo.run_results"
_TABLE_FORMAT = "topo.table3"
_VERSION = 1


# -------------------------------------------------------------------------------------------- run records


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


# ------------------------------------------------------------------------------------------------ Table 3


@dataclass(frozen=True)
class VariantSummary:
    """One variant's runs in one cell.

    Attributes:
        seeds: Pretraining seeds, ascending.
        acc: Accuracy per seed (same order).
        auc: AUC per seed (same order).
        acc_mean: Mean accuracy.
        acc_std: Sample std (``ddof=1``) of accuracy; ``None`` with a single seed.
        auc_mean: Mean AUC.
        auc_std: Sample std of AUC; ``None`` with a single seed.
    """

    seeds: tuple[int, ...]
    acc: tuple[float, ...]
    auc: tuple[float, ...]
    acc_mean: float
    acc_std: float | None
    auc_mean: float
    auc_std: float | None


@dataclass(frozen=True)
class Comparison:
    """TopoCL versus baseline for one metric in one cell.

    Attributes:
        delta: ``topocl mean − baseline mean`` (of the displayed means).
        t: Paired t statistic (TopoCL − baseline); ``None`` when undefined or infinite.
        p: Two-sided p-value; ``None`` when undefined (see ``reason``).
        n_pairs: Number of seed-matched pairs used by the test.
        reason: Why ``p`` is ``None``; ``None`` when the test is defined.
    """

    delta: float
    t: float | None
    p: float | None
    n_pairs: int
    reason: str | None


@dataclass(frozen=True)
class Cell:
    """One dataset (or the "Avg" column) of one method.

    Attributes:
        dataset: Dataset name or ``"Avg"``.
        baseline: Baseline runs; ``None`` if there are none.
        topocl: TopoCL runs; ``None`` if there are none.
        acc: ACC comparison; ``None`` unless both variants have runs.
        auc: AUC comparison; ``None`` unless both variants have runs.
        warnings: Problems worth printing (unpaired seeds, missing variants or datasets).
    """

    dataset: str
    baseline: VariantSummary | None
    topocl: VariantSummary | None
    acc: Comparison | None
    auc: Comparison | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MethodRow:
    """All cells of one pretraining method.

    Attributes:
        method: Method name.
        cells: One cell per dataset of the table, in the table's dataset order.
        avg: The dataset-average column.
    """

    method: str
    cells: tuple[Cell, ...]
    avg: Cell


@dataclass(frozen=True)
class Table3:
    """The paper's Table 3.

    Attributes:
        datasets: Dataset columns, in display order.
        rows: One :class:`MethodRow` per method, in display order.
    """

    datasets: tuple[str, ...]
    rows: tuple[MethodRow, ...]

    def row(self, method: str) -> MethodRow:
        """The row of ``method``.

        Args:
            method: Method name.

        Returns:
            The :class:`MethodRow`.

        Raises:
            KeyError: If the table has no such method.
        """
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(f"no method {method!r}; methods: {[r.method for r in self.rows]}")

    def cell(self, method: str, dataset: str) -> Cell:
        """The cell of ``method`` on ``dataset`` (``"Avg"`` for the average column).

        Args:
            method: Method name.
            dataset: Dataset name or ``"Avg"``.

        Returns:
            The :class:`Cell`.

        Raises:
            KeyError: If there is no such method or dataset.
        """
        r = self.row(method)
        if dataset == AVG:
            return r.avg
        for c in r.cells:
            if c.dataset == dataset:
                return c
        raise KeyError(f"no dataset {dataset!r}; datasets: {list(self.datasets)}")


def _summary(runs: Mapping[int, tuple[float, float]]) -> VariantSummary | None:
    if not runs:
        return None
    seeds = tuple(sorted(runs))
    acc = tuple(runs[s][0] for s in seeds)
    auc = tuple(runs[s][1] for s in seeds)
    acc_mean, acc_std = mean_std(acc)
    auc_mean, auc_std = mean_std(auc)
    return VariantSummary(
        seeds=seeds,
        acc=acc,
        auc=auc,
        acc_mean=acc_mean,
        acc_std=None if math.isnan(acc_std) else acc_std,
        auc_mean=auc_mean,
        auc_std=None if math.isnan(auc_std) else auc_std,
    )


def _compare(base: VariantSummary, topo: VariantSummary, paired: Sequence[int], metric: str) -> Comparison:
    b = dict(zip(base.seeds, getattr(base, metric), strict=True))
    t = dict(zip(topo.seeds, getattr(topo, metric), strict=True))
    res = paired_ttest([b[s] for s in paired], [t[s] for s in paired])
    delta = getattr(topo, f"{metric}_mean") - getattr(base, f"{metric}_mean")
    return Comparison(
        delta=delta,
        t=res.t if math.isfinite(res.t) else None,
        p=None if math.isnan(res.p) else res.p,
        n_pairs=res.n,
        reason=res.reason,
    )


def _make_cell(
    name: str, base_runs: Mapping[int, tuple[float, float]], topo_runs: Mapping[int, tuple[float, float]]
) -> Cell:
    base, topo = _summary(base_runs), _summary(topo_runs)
    warnings: list[str] = []
    if base is None and topo is None:
        return Cell(name, None, None, None, None, ("no runs",))
    if base is None or topo is None:
        missing = "baseline" if base is None else "topocl"
        return Cell(name, base, topo, None, None, (f"no {missing} runs; no comparison",))
    paired = sorted(set(base.seeds) & set(topo.seeds))
    unpaired = sorted(set(base.seeds) ^ set(topo.seeds))
    if unpaired:
        warnings.append(
            f"seed(s) {unpaired} have only one variant: they enter the means but not the paired t-test"
        )
    return Cell(
        name,
        base,
        topo,
        _compare(base, topo, paired, "acc"),
        _compare(base, topo, paired, "auc"),
        tuple(warnings),
    )


def build_table(
    results: Iterable[RunResult],
    *,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
) -> Table3:
    """Build Table 3 from run records.

    Args:
        results: Records; at most one per (dataset, method, variant, seed).
        datasets: Dataset column order; default order of first appearance. Must cover every
            dataset in ``results`` (records of unlisted datasets would silently vanish otherwise).
        methods: Method row order; default order of first appearance. Must cover every method.

    Returns:
        The :class:`Table3`. The "Avg" cell of a method averages, per seed and variant, the metrics
        over all table datasets; seeds missing any dataset are left out of it (with a warning).

    Raises:
        ValueError: On no records, duplicate records, or ``datasets``/``methods`` that omit or
            invent names.
    """
    records = list(results)
    if not records:
        raise ValueError("results is empty; build_table needs at least one RunResult")
    for r in records:
        if not isinstance(r, RunResult):
            raise ValueError(f"results must contain RunResult records, got {type(r).__name__}")
    runs: dict[tuple[str, str, str], dict[int, tuple[float, float]]] = {}
    for r in records:
        bucket = runs.setdefault((r.method, r.dataset, r.variant), {})
        if r.seed in bucket:
            raise ValueError(
                f"duplicate run: dataset={r.dataset!r} method={r.method!r} "
                f"variant={r.variant!r} seed={r.seed}"
            )
        bucket[r.seed] = (r.acc, r.auc)

    def _order(given: Sequence[str] | None, seen: list[str], what: str) -> tuple[str, ...]:
        if given is None:
            return tuple(dict.fromkeys(seen))
        given_t = tuple(given)
        if len(set(given_t)) != len(given_t):
            raise ValueError(f"{what} contains duplicates: {list(given_t)}")
        if set(given_t) != set(seen):
            raise ValueError(
                f"{what} {list(given_t)} must list exactly the {what} in results: {sorted(set(seen))}"
            )
        return given_t

    ds_order = _order(datasets, [r.dataset for r in records], "datasets")
    m_order = _order(methods, [r.method for r in records], "methods")

    rows: list[MethodRow] = []
    for m in m_order:
        cells = tuple(
            _make_cell(d, runs.get((m, d, "baseline"), {}), runs.get((m, d, "topocl"), {})) for d in ds_order
        )
        avg_runs: dict[str, dict[int, tuple[float, float]]] = {}
        avg_warnings: list[str] = []
        for v in VARIANTS:
            per_ds = [runs.get((m, d, v), {}) for d in ds_order]
            all_seeds = sorted(set().union(*per_ds))
            complete = [s for s in all_seeds if all(s in p for p in per_ds)]
            dropped = sorted(set(all_seeds) - set(complete))
            if dropped:
                avg_warnings.append(f"{v} seed(s) {dropped} lack some dataset and are left out of {AVG}")
            avg_runs[v] = {
                s: (
                    float(np.mean([p[s][0] for p in per_ds])),
                    float(np.mean([p[s][1] for p in per_ds])),
                )
                for s in complete
            }
        avg = _make_cell(AVG, avg_runs["baseline"], avg_runs["topocl"])
        avg = Cell(
            avg.dataset, avg.baseline, avg.topocl, avg.acc, avg.auc, tuple(avg_warnings) + avg.warnings
        )
        rows.append(MethodRow(m, cells, avg))
    return Table3(datasets=ds_order, rows=tuple(rows))


# ---------------------------------------------------------------------------------------- serialisation


def _variant_to_json(v: VariantSummary | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "seeds": list(v.seeds),
        "acc": list(v.acc),
        "auc": list(v.auc),
        "acc_mean": v.acc_mean,
        "acc_std": v.acc_std,
        "auc_mean": v.auc_mean,
        "auc_std": v.auc_std,
    }


def _variant_from_json(d: Mapping[str, Any] | None) -> VariantSummary | None:
    if d is None:
        return None
    return VariantSummary(
        seeds=tuple(int(s) for s in d["seeds"]),
        acc=tuple(float(a) for a in d["acc"]),
        auc=tuple(float(a) for a in d["auc"]),
        acc_mean=float(d["acc_mean"]),
        acc_std=None if d["acc_std"] is None else float(d["acc_std"]),
        auc_mean=float(d["auc_mean"]),
        auc_std=None if d["auc_std"] is None else float(d["auc_std"]),
    )


def _cmp_to_json(c: Comparison | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"delta": c.delta, "t": c.t, "p": c.p, "n_pairs": c.n_pairs, "reason": c.reason}


def _cmp_from_json(d: Mapping[str, Any] | None) -> Comparison | None:
    if d is None:
        return None
    return Comparison(
        delta=float(d["delta"]),
        t=None if d["t"] is None else float(d["t"]),
        p=None if d["p"] is None else float(d["p"]),
        n_pairs=int(d["n_pairs"]),
        reason=d["reason"],
    )


def _cell_to_json(c: Cell) -> dict[str, Any]:
    return {
        "dataset": c.dataset,
        "baseline": _variant_to_json(c.baseline),
        "topocl": _variant_to_json(c.topocl),
        "acc": _cmp_to_json(c.acc),
        "auc": _cmp_to_json(c.auc),
        "warnings": list(c.warnings),
    }


def _cell_from_json(d: Mapping[str, Any]) -> Cell:
    return Cell(
        dataset=d["dataset"],
        baseline=_variant_from_json(d["baseline"]),
        topocl=_variant_from_json(d["topocl"]),
        acc=_cmp_from_json(d["acc"]),
        auc=_cmp_from_json(d["auc"]),
        warnings=tuple(d["warnings"]),
    )


def to_json(table: Table3) -> dict[str, Any]:
    """Serialise a table to a strict-JSON dictionary (no NaN: undefined values are ``null``).

    Args:
        table: The table.

    Returns:
        A dictionary that ``json.dumps(..., allow_nan=False)`` accepts; :func:`from_json` inverts it
        exactly (Python floats survive JSON unchanged).
    """
    return {
        "format": _TABLE_FORMAT,
        "version": _VERSION,
        "std_ddof": 1,
        "test": "two-sided paired t-test (scipy.stats.ttest_rel), runs paired by seed",
        "datasets": list(table.datasets),
        "rows": [
            {"method": r.method, "cells": [_cell_to_json(c) for c in r.cells], "avg": _cell_to_json(r.avg)}
            for r in table.rows
        ],
    }


def from_json(d: Mapping[str, Any]) -> Table3:
    """Rebuild a table from :func:`to_json` output (also after a ``json.dumps``/``json.loads`` trip).

    Args:
        d: The dictionary.

    Returns:
        The :class:`Table3`, equal to the serialised one.

    Raises:
        ValueError: If ``d`` is not a Table 3 document of a supported version.
    """
    if d.get("format") != _TABLE_FORMAT or d.get("version") != _VERSION:
        raise ValueError(
            f"not a {_TABLE_FORMAT!r} version {_VERSION} document "
            f"(format={d.get('format')!r}, version={d.get('version')!r})"
        )
    return Table3(
        datasets=tuple(d["datasets"]),
        rows=tuple(
            MethodRow(
                method=r["method"],
                cells=tuple(_cell_from_json(c) for c in r["cells"]),
                avg=_cell_from_json(r["avg"]),
            )
            for r in d["rows"]
        ),
    )


# --------------------------------------------------------------------------------------------- markdown


def format_p(p: float | None) -> str:
    """Format a p-value for tables: ``"n/a"`` when undefined, 3 decimals, or scientific below 0.001.

    Args:
        p: The p-value or ``None``.

    Returns:
        The formatted string.
    """
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _fmt_stat(mean: float, std: float | None, scale: float, decimals: int) -> str:
    if std is None:
        return f"{mean * scale:.{decimals}f}"
    return f"{mean * scale:.{decimals}f} ± {std * scale:.{decimals}f}"


def to_markdown(table: Table3, *, percent: bool = True, decimals: int = 1) -> str:
    """Render Table 3 as GitHub markdown.

    Per method four rows: baseline and TopoCL (mean ± std), Δ (TopoCL − baseline, in the same unit)
    and the paired t-test p-value; columns ACC and AUC per dataset and for "Avg". Undefined p-values
    show ``n/a`` with the reason listed under the table, followed by all cell warnings.

    Args:
        table: The table.
        percent: Show metrics as percentages (default) instead of fractions.
        decimals: Decimal places of metric values.

    Returns:
        The markdown text.
    """
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else "fraction"
    cols = [*table.datasets, AVG]
    header = ["Method", ""] + [f"{c} {m}" for c in cols for m in ("ACC", "AUC")]
    lines = [
        f"ACC / AUC ({unit}): mean ± std over pretraining seeds (sample std, ddof=1); "
        "Δ = TopoCL − baseline; p = two-sided paired t-test, runs paired by seed.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|",
    ]
    notes: list[str] = []
    for r in table.rows:
        all_cells = [*r.cells, r.avg]
        base_row, topo_row, delta_row, p_row = [r.method, "Baseline"], ["", "+TopoCL"], ["", "Δ"], ["", "p"]
        for c in all_cells:
            for metric in ("acc", "auc"):
                for row, summary in ((base_row, c.baseline), (topo_row, c.topocl)):
                    if summary is None:
                        row.append("—")
                    else:
                        row.append(
                            _fmt_stat(
                                getattr(summary, f"{metric}_mean"),
                                getattr(summary, f"{metric}_std"),
                                scale,
                                decimals,
                            )
                        )
                cmp_ = getattr(c, metric)
                if cmp_ is None:
                    delta_row.append("—")
                    p_row.append("—")
                else:
                    delta_row.append(f"{cmp_.delta * scale:+.{decimals}f}")
                    p_row.append(format_p(cmp_.p))
                    if cmp_.p is None:
                        notes.append(f"{r.method} / {c.dataset} {metric.upper()}: p n/a ({cmp_.reason})")
            notes.extend(f"{r.method} / {c.dataset}: {w}" for w in c.warnings)
        for row in (base_row, topo_row, delta_row, p_row):
            lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", "Notes:", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ gate weights


def _check_gate_inputs(
    weights: np.ndarray, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"weights must have shape (N, n_experts) with N, n_experts >= 1, got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    if labels is None:
        return w, None
    lab = np.asarray(labels)
    if lab.shape != (w.shape[0],) or not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
        raise ValueError(
            f"labels must be non-negative integers of shape ({w.shape[0]},), got {lab.shape} {lab.dtype}"
        )
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


# ------------------------------------------------------------------------------------------------- cost


def _call_args(example_input: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_input, Mapping):
        return (), dict(example_input)
    if isinstance(example_input, tuple | list):
        return tuple(example_input), {}
    return (example_input,), {}


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, Mapping):
        obj = list(obj.values())
    if isinstance(obj, tuple | list):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _float_outputs(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj] if obj.is_floating_point() and obj.requires_grad else []
    if isinstance(obj, Mapping):
        obj = list(obj.values())
    if isinstance(obj, tuple | list):
        return [t for o in obj for t in _float_outputs(o)]
    return []


def _per_sample(total: int, batch: int) -> int | float:
    return total // batch if total % batch == 0 else total / batch


def model_cost(model: nn.Module, example_input: Any, *, backward: bool = False) -> dict[str, Any]:
    """Parameter counts and FLOPs of a model (for the paper's cost tables).

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts as 2
    FLOPs; only the ops it knows — matmuls, convolutions, attention — are counted; element-wise ops
    and normalisation are not). The forward pass runs under ``torch.no_grad``; the model's
    train/eval mode is left as it is.

    Args:
        model: The module.
        example_input: A tensor, a tuple/list of positional arguments, or a dict of keyword
            arguments; the first tensor's first dimension is the batch size.
        backward: Also count a training step (forward + backward of the sum of the outputs); existing
            ``.grad`` values are restored afterwards.

    Returns:
        ``{"params_total", "params_trainable", "batch_size", "flops_forward_batch",
        "flops_forward_per_sample", "gflops_forward_per_sample"}`` plus, with ``backward``,
        ``"flops_train_step_per_sample"`` and ``"gflops_train_step_per_sample"``.

    Raises:
        ValueError: If no input tensor is found, or ``backward`` is requested without any output
            that requires grad.
    """
    args, kwargs = _call_args(example_input)
    first = _first_tensor([list(args), kwargs])
    if first is None or first.ndim == 0:
        raise ValueError("example_input must contain a batched tensor (first dimension = batch size)")
    batch = int(first.shape[0])
    if batch < 1:
        raise ValueError(f"example_input batch size must be >= 1, got {batch}")
    params = list(model.parameters())
    out: dict[str, Any] = {
        "params_total": int(sum(p.numel() for p in params)),
        "params_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "batch_size": batch,
    }
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*args, **kwargs)
    fwd = int(counter.get_total_flops())
    out["flops_forward_batch"] = fwd
    out["flops_forward_per_sample"] = _per_sample(fwd, batch)
    out["gflops_forward_per_sample"] = fwd / batch / 1e9

    if backward:
        saved = [p.grad for p in params]
        counter = FlopCounterMode(display=False)
        try:
            with counter, torch.enable_grad():
                outputs = _float_outputs(model(*args, **kwargs))
                if not outputs:
                    raise ValueError(
                        "backward=True needs a model output that requires grad (trainable parameters)"
                    )
                torch.stack([o.sum() for o in outputs]).sum().backward()
        finally:
            for p, g in zip(params, saved, strict=True):
                p.grad = g
        step = int(counter.get_total_flops())
        out["flops_train_step_per_sample"] = _per_sample(step, batch)
        out["gflops_train_step_per_sample"] = step / batch / 1e9
    return out


def cost_table_markdown(rows: Sequence[Mapping[str, Any]], *, title: str | None = None) -> str:
    """Markdown cost table (the paper's Tables 6-7) from :func:`model_cost` rows.

    Each row needs ``"name"`` and the keys of :func:`model_cost`. Optional columns appear when any row
    has them: ``"gflops_train_step_per_sample"`` and ``"throughput_img_s"`` (measured training
    throughput in images/s, supplied by the caller).

    Args:
        rows: One mapping per model / method.
        title: Optional line above the table.

    Returns:
        The markdown text.

    Raises:
        ValueError: If ``rows`` is empty or a row lacks a required key.
    """
    if not rows:
        raise ValueError("rows is empty; give at least one model_cost row with a 'name'")
    required = ("name", "params_total", "params_trainable", "gflops_forward_per_sample")
    for i, r in enumerate(rows):
        missing = [k for k in required if k not in r]
        if missing:
            raise ValueError(f"rows[{i}] lacks {missing}; required keys: {list(required)}")
    has_train = any("gflops_train_step_per_sample" in r for r in rows)
    has_tput = any(r.get("throughput_img_s") is not None for r in rows)
    header = ["Model", "Params (M)", "Trainable (M)", "GFLOPs/img (fwd)"]
    if has_train:
        header.append("GFLOPs/img (train step)")
    if has_tput:
        header.append("Throughput (img/s)")
    lines = [f"{title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|---|" + "|".join(["---:"] * (len(header) - 1)) + "|"]
    for r in rows:
        cells = [
            str(r["name"]),
            f"{r['params_total'] / 1e6:.2f}",
            f"{r['params_trainable'] / 1e6:.2f}",
            f"{r['gflops_forward_per_sample']:.3f}",
        ]
        if has_train:
            g = r.get("gflops_train_step_per_sample")
            cells.append("—" if g is None else f"{g:.3f}")
        if has_tput:
            t = r.get("throughput_img_s")
            cells.append("—" if t is None else f"{t:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
