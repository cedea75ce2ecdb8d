"""The paper's Table 3, built from run records.

Table 3 compares, per pretraining method, the baseline and its TopoCL variant on every dataset:
ACC and AUC as mean ± sample std (``ddof=1``) over pretraining seeds, the difference of means
(Δ = TopoCL − baseline) and a two-sided paired t-test with runs paired by seed. The "Avg" column
first averages each seed's results over the datasets and then summarises those per-seed averages
the same way, so its t-test is also paired by seed.

Metric values are stored as fractions in ``[0, 1]``; the markdown shows percentages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from topo.trainer.eval.report.records import AVG, VARIANTS, RunResult
from topo.trainer.eval.stats import mean_std, paired_ttest


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
        majority_acc: Test-split majority-class ACC per dataset (and "Avg", their mean), the floor every ACC
            must be read against; a dataset whose records carry no probe references is absent.
    """

    datasets: tuple[str, ...]
    rows: tuple[MethodRow, ...]
    majority_acc: Mapping[str, float] = field(default_factory=dict)

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
        warnings.append(f"seed(s) {unpaired} have only one variant: they enter the means but not the paired t-test")
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
                f"duplicate run: dataset={r.dataset!r} method={r.method!r} variant={r.variant!r} seed={r.seed}"
            )
        bucket[r.seed] = (r.acc, r.auc)

    def _order(given: Sequence[str] | None, seen: list[str], what: str) -> tuple[str, ...]:
        if given is None:
            return tuple(dict.fromkeys(seen))
        given_t = tuple(given)
        if len(set(given_t)) != len(given_t):
            raise ValueError(f"{what} contains duplicates: {list(given_t)}")
        if set(given_t) != set(seen):
            raise ValueError(f"{what} {list(given_t)} must list exactly the {what} in results: {sorted(set(seen))}")
        return given_t

    ds_order = _order(datasets, [r.dataset for r in records], "datasets")
    m_order = _order(methods, [r.method for r in records], "methods")

    rows: list[MethodRow] = []
    for m in m_order:
        cells = tuple(_make_cell(d, runs.get((m, d, "baseline"), {}), runs.get((m, d, "topocl"), {})) for d in ds_order)
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
        avg = Cell(avg.dataset, avg.baseline, avg.topocl, avg.acc, avg.auc, tuple(avg_warnings) + avg.warnings)
        rows.append(MethodRow(m, cells, avg))
    return Table3(datasets=ds_order, rows=tuple(rows), majority_acc=_majority_by_dataset(records, ds_order))


def _majority_by_dataset(records: Sequence[RunResult], datasets: Sequence[str]) -> dict[str, float]:
    """The test majority rate each dataset's probes recorded; Avg only when every dataset has one."""
    found: dict[str, set[float]] = {}
    for r in records:
        refs = (r.extras.get("probe") or {}).get("references") or {}
        value = (refs.get("test") or {}).get("majority_acc")
        if value is not None:
            found.setdefault(r.dataset, set()).add(round(float(value), 12))
    for d, values in found.items():
        if len(values) > 1:  # one test split per dataset: different rates mean the rows saw different data
            raise ValueError(f"dataset {d!r}: records disagree on the test majority rate {sorted(values)}")
    out = {d: next(iter(found[d])) for d in datasets if d in found}
    if out and len(out) == len(datasets):
        out[AVG] = float(np.mean([out[d] for d in datasets]))
    return out
