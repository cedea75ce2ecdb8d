"""What a person sees of a calibration: the ranges as a rich table, δ against s as a figure."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa


def format_ranges(ranges: Mapping[str, Mapping[str, Any]] | pa.Table) -> Any:
    """A rich table of the calibrated ranges: one row per combination, one column per band.

    Args:
        ranges: :func:`load_ranges`' dict, or the ranges table (which adds the reason a band is unusable).

    Returns:
        A :class:`rich.table.Table`.
    """
    from rich.table import Table

    reasons: dict[tuple[str, str], str] = {}
    if isinstance(ranges, pa.Table):
        data: dict[str, dict[str, tuple[float, float] | None]] = {}
        for r in ranges.to_pylist():
            data.setdefault(r["combination"], {})[r["band"]] = None if r["lo"] is None else (r["lo"], r["hi"])
            if r["reason"] or r.get("note"):
                reasons[(r["combination"], r["band"])] = r["reason"] or r["note"]
    else:
        data = {k: {b: v for b, v in e.items() if b not in ("reasons", "notes")} for k, e in ranges.items()}
    band_names = list(dict.fromkeys(b for e in data.values() for b in e))
    t = Table(title="Calibrated intensity ranges (s in [0, 1])")
    t.add_column("combination", style="bold")
    for b in band_names:
        t.add_column(f"topo-{b}")
    if reasons:
        t.add_column("note", overflow="fold")
    for name, entry in data.items():
        cells = []
        for b in band_names:
            v = entry.get(b)
            cells.append("[dim]unusable[/dim]" if v is None else f"{v[0]:.3f} – {v[1]:.3f}")
        if reasons:
            cells.append("; ".join(f"{b}: {reasons[(name, b)]}" for b in band_names if (name, b) in reasons))
        t.add_row(name, *cells)
    return t


def plot_calibration(
    table: pa.Table,
    out_png: str | os.PathLike[str],
    *,
    bands: Mapping[str, Sequence[float]] | None = None,
    ranges: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """δ against s per combination: median line, p10–p90 band, target bands and derived ranges shaded.

    Args:
        table: the per (combination, s) summary (:func:`summarize`).
        out_png: where to write the PNG.
        bands: target δ bands to draw as horizontal stripes.
        ranges: derived ranges (:func:`derive_ranges`' JSON or :func:`load_ranges`' dict), drawn as
            vertical spans.

    Returns:
        The PNG's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comb = table.column("combination").to_pylist()
    names = list(dict.fromkeys(comb))
    cols = max(1, min(4, len(names)))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False, sharey=True)
    colours = ["tab:green", "tab:red", "tab:purple", "tab:orange"]
    s_all = table.column("s").to_numpy()
    med, p10, p90 = (table.column(k).to_numpy(zero_copy_only=False) for k in ("delta_median", "delta_p10", "delta_p90"))
    for ax, name in zip(axes.flat, names, strict=False):
        sel = np.array([c == name for c in comb])
        ax.fill_between(s_all[sel], p10[sel], p90[sel], alpha=0.25, color="tab:blue", label="p10–p90")
        ax.plot(s_all[sel], med[sel], "o-", color="tab:blue", ms=3, label="median δ")
        for i, (bname, (lo, hi)) in enumerate((bands or {}).items()):
            colour = colours[i % len(colours)]
            ax.axhspan(lo, hi, color=colour, alpha=0.08)
            r = (ranges or {}).get(name, {}).get(bname)
            if r is not None:
                ax.axvspan(r[0], r[1], color=colour, alpha=0.15, label=f"topo-{bname}")
        ax.set_title(name, fontsize=8)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("δ (relative bottleneck)")
    for i, ax in enumerate(axes.flat[: len(names)]):
        if i + cols >= len(names):  # the lowest plot of its column
            ax.set_xlabel("intensity s")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1 : len(names)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
