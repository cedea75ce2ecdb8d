"""The calibration's tables: δ summarised per (combination, s), the s-ranges derived from it, and reading them back."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from topo.pipeline.calibrate.grid_and_bands import DEFAULT_BANDS, _check_bands
from topo.store_schema.calibration import load_ranges, ranges_from_json

FINE_GRID_POINTS = 1001

_STATS = ("mean", "median", "p10", "p90")


def summarize(deltas: pa.Table, combinations: Sequence[str], grid: Sequence[float]) -> pa.Table:
    """Per (combination, s): ``n`` (finite δ) and mean, median, p10, p90 of δ, δ_H0 and δ_H1."""
    comb = np.asarray(deltas.column("combination").to_pylist(), dtype=object)
    s_col = deltas.column("s").to_numpy()
    vals = {k: deltas.column(k).to_numpy(zero_copy_only=False) for k in ("delta", "delta_h0", "delta_h1")}
    cols: dict[str, list] = {"combination": [], "s": [], "n": []}
    for k in vals:
        for st in _STATS:
            cols[f"{k}_{st}"] = []
    for c in combinations:
        for s in grid:
            sel = (comb == c) & (s_col == s)
            cols["combination"].append(c)
            cols["s"].append(float(s))
            cols["n"].append(int(np.isfinite(vals["delta"][sel]).sum()))
            for k, v in vals.items():
                x = v[sel]
                x = x[np.isfinite(x)]
                stats = (
                    (float(x.mean()), float(np.median(x)), *(float(q) for q in np.percentile(x, [10, 90])))
                    if x.size
                    else (math.nan,) * 4
                )
                for st, val in zip(_STATS, stats, strict=True):
                    cols[f"{k}_{st}"].append(val)
    return pa.table(cols)


_RANGE_SCHEMA = pa.schema(
    [
        ("combination", pa.string()),
        ("band", pa.string()),
        ("lo", pa.float64()),
        ("hi", pa.float64()),
        ("usable", pa.bool_()),
        ("reason", pa.string()),
        ("note", pa.string()),
        ("band_lo", pa.float64()),
        ("band_hi", pa.float64()),
    ]
)


def derive_ranges(
    table: pa.Table, bands: Mapping[str, Sequence[float]] = DEFAULT_BANDS
) -> tuple[pa.Table, dict[str, Any]]:
    """The s-interval of each combination whose (monotone-fitted) median δ lies in each band.

    The median δ is fitted against s with increasing isotonic regression, interpolated linearly on a fine
    grid of ``FINE_GRID_POINTS`` intensities between the smallest and largest grid value (no extrapolation),
    and the band's interval is where the fit lies in ``[lo, hi]``. Because the fit is monotone and the bands
    do not overlap, a lower band's interval lies below a higher band's.

    Returns:
        A table with one row per (combination, band) — ``lo``, ``hi`` (null if unusable), ``usable``,
        ``reason`` (why unusable), ``note`` (e.g. the interval was clipped at the grid's end), ``band_lo``,
        ``band_hi`` — and the same as plain JSON: ``{combination: {band: [lo, hi] | None,
        "reasons": {band: str | None}, "notes": {band: str | None}}}``.
    """
    from sklearn.isotonic import IsotonicRegression

    bands_t = _check_bands(bands)
    comb = table.column("combination").to_pylist()
    s_all = table.column("s").to_numpy()
    med_all = table.column("delta_median").to_numpy(zero_copy_only=False)
    names = list(dict.fromkeys(comb))
    rows: dict[str, list] = {k: [] for k in _RANGE_SCHEMA.names}
    out: dict[str, Any] = {}
    for name in names:
        sel = np.array([c == name for c in comb]) & np.isfinite(med_all)
        s, med = s_all[sel], med_all[sel]
        entry: dict[str, Any] = {"reasons": {}, "notes": {}}
        for band, (lo, hi) in bands_t.items():
            interval, reason, note = _band_interval(s, med, lo, hi, IsotonicRegression)
            entry[band] = None if interval is None else [interval[0], interval[1]]
            entry["reasons"][band] = reason
            entry["notes"][band] = note
            rows["combination"].append(name)
            rows["band"].append(band)
            rows["lo"].append(None if interval is None else interval[0])
            rows["hi"].append(None if interval is None else interval[1])
            rows["usable"].append(interval is not None)
            rows["reason"].append(reason)
            rows["note"].append(note)
            rows["band_lo"].append(lo)
            rows["band_hi"].append(hi)
        out[name] = entry
    return pa.table(rows, schema=_RANGE_SCHEMA), out


def _band_interval(
    s: np.ndarray, med: np.ndarray, lo: float, hi: float, isotonic: type
) -> tuple[tuple[float, float] | None, str | None, str | None]:
    """(interval, reason it is unusable, note) for one band."""
    if len(s) < 2:
        return None, "fewer than two intensities with a finite median δ", None
    fit = isotonic(increasing=True, out_of_bounds="clip").fit(s, med)
    fine = np.linspace(float(s.min()), float(s.max()), FINE_GRID_POINTS)
    f = fit.predict(fine)
    inside = (f >= lo) & (f <= hi)
    if not inside.any():
        if f.max() < lo:
            return (
                None,
                (
                    f"median δ reaches at most {f.max():.1%} (at s = {s.max():g}), below the band "
                    f"{lo:.0%}–{hi:.0%}: the combination cannot reach it on this grid"
                ),
                None,
            )
        if f.min() > hi:
            return (
                None,
                (
                    f"median δ is already {f.min():.1%} at the smallest s = {s.min():g}, above the band "
                    f"{lo:.0%}–{hi:.0%}: add smaller intensities to the grid"
                ),
                None,
            )
        return None, f"median δ jumps over the band {lo:.0%}–{hi:.0%} between two fine-grid intensities", None
    where = np.flatnonzero(inside)
    a, b = float(fine[where[0]]), float(fine[where[-1]])
    if b <= a:
        reason = f"median δ crosses the band {lo:.0%}–{hi:.0%} within one fine-grid step (s ≈ {a:.3f})"
        return None, reason, None
    # No extrapolation: where the band is already entered at the smallest s (or not yet left at the largest),
    # the interval stops at the grid's end and says so; a wider grid would tell how far it really goes.
    notes = []
    if where[0] == 0 and f[0] > lo:
        notes.append(f"median δ is already {f[0]:.1%} at the smallest s; smaller s may qualify too")
    if where[-1] == len(fine) - 1 and f[-1] < hi:
        notes.append(f"median δ is still {f[-1]:.1%} at the largest s; larger s may qualify too")
    return (round(a, 6), round(b, 6)), None, "; ".join(notes) or None


__all__ = ["FINE_GRID_POINTS", "derive_ranges", "load_ranges", "ranges_from_json", "summarize"]
