"""The intensity grid and the target δ bands of a calibration: defaults, checks and command-line parsing."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_GRID: tuple[float, ...] = (0.03, 0.06, 0.1, 0.16, 0.25, 0.4, 0.63, 1.0)
"""Eight intensities in (0, 1], roughly log-spaced: weak bands sit at small s for most operators."""

DEFAULT_BANDS: dict[str, tuple[float, float]] = {"weak": (0.05, 0.15), "strong": (0.15, 0.25)}
"""Target δ bands: topo-weak 5–15 %, topo-strong 15–25 %."""


def _check_grid(grid: Sequence[float] | int) -> tuple[float, ...]:
    if isinstance(grid, int | np.integer):
        if grid < 2:
            raise ValueError(f"grid must have at least 2 intensities, got {grid}")
        return tuple((i + 1) / int(grid) for i in range(int(grid)))
    g = tuple(float(v) for v in grid)
    if len(g) < 2:
        raise ValueError(f"grid must have at least 2 intensities, got {list(g)}")
    bad = [v for v in g if not 0.0 < v <= 1.0]
    if bad:
        raise ValueError(f"grid intensities must lie in (0, 1], got {bad}")
    if list(g) != sorted(set(g)):
        raise ValueError(f"grid intensities must be strictly increasing, got {list(g)}")
    return g


def _check_bands(bands: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    if not bands:
        raise ValueError("bands must name at least one δ band, e.g. {'weak': (0.05, 0.15)}")
    out: dict[str, tuple[float, float]] = {}
    for name, band in bands.items():
        if name in ("reasons", "notes"):
            raise ValueError(f"band name {name!r} is reserved; use another name (e.g. 'weak', 'strong')")
        try:
            lo, hi = (float(v) for v in band)
        except (TypeError, ValueError):
            raise ValueError(f"band {name!r} must be a pair (lo, hi) of δ fractions, got {band!r}") from None
        if not 0.0 <= lo < hi:
            raise ValueError(f"band {name!r} must be (lo, hi) with 0 <= lo < hi, got {tuple(band)}")
        out[str(name)] = (lo, hi)
    ordered = sorted(out.items(), key=lambda kv: kv[1])
    for (n1, b1), (n2, b2) in itertools.pairwise(ordered):
        if b1[1] > b2[0]:
            raise ValueError(f"bands must not overlap: {n1!r} {b1} and {n2!r} {b2}")
    return out


def parse_grid(text: str) -> tuple[float, ...]:
    """A grid from the command line: a count (``"8"`` → 1/8 … 1) or comma-separated intensities.

    Raises:
        ValueError: neither form, or intensities outside (0, 1] or not increasing.
    """
    t = text.strip()
    if t.isdigit():
        return _check_grid(int(t))
    try:
        values = [float(v) for v in t.split(",") if v.strip()]
    except ValueError:
        msg = f"grid must be a count (e.g. 8) or intensities like 0.1,0.2,0.4; got {text!r}"
        raise ValueError(msg) from None
    return _check_grid(values)


def parse_bands(text: str) -> dict[str, tuple[float, float]]:
    """Bands from the command line: ``"weak=0.05:0.15,strong=0.15:0.25"``.

    Raises:
        ValueError: not of that form, or overlapping / empty bands.
    """
    out: dict[str, tuple[float, float]] = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not (sep and sep2 and name.strip()):
                raise ValueError
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ValueError(f"bands must look like weak=0.05:0.15,strong=0.15:0.25; cannot read {item!r}") from None
    return _check_bands(out)
