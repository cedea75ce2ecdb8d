"""Table 3 as GitHub markdown: mean ± std, Δ and paired t-test p-values, with the reasons for any n/a."""

from __future__ import annotations

import math

from topo.trainer.eval.report.records import AVG
from topo.trainer.eval.report.table3 import Table3


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
    show ``n/a`` with the reason listed under the table, followed by all cell warnings. A first row gives the
    test split's majority-class ACC and the chance AUC when the records carry them.

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
    if table.majority_acc:
        # The floor: a probe that predicts the commonest test class scores this ACC, and any AUC 50.
        floor = ["Majority class", ""]
        for col in cols:
            m = table.majority_acc.get(col)
            floor += ["—" if m is None else f"{m * scale:.{decimals}f}", f"{0.5 * scale:.{decimals}f}"]
        lines.append("| " + " | ".join(floor) + " |")
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
