"""Table 3 as strict JSON (no NaN) and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topo.trainer.eval.report.records import _VERSION
from topo.trainer.eval.report.table3 import Cell, Comparison, MethodRow, Table3, VariantSummary

_TABLE_FORMAT = "topo.table3"


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
        "majority_acc": dict(table.majority_acc),
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
        majority_acc=dict(d.get("majority_acc") or {}),
    )
