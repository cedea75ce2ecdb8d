"""Summary statistics over runs (pretraining seeds): mean ± std and paired t-tests.

Conventions (stated in every report): the standard deviation is the *sample* standard deviation
(``ddof=1``), and the paired t-test is two-sided, ``scipy.stats.ttest_rel`` on seed-matched pairs.
Degenerate inputs give NaN with a human-readable reason instead of an exception or a scipy warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["PairedTTest", "mean_std", "paired_ttest"]


def _as_1d(values: Iterable[float], name: str) -> np.ndarray:
    try:
        arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of run values.

    Args:
        values: One value per run, shape ``(n,)``, ``n >= 1``.

    Returns:
        ``(mean, std)``. With a single value the sample standard deviation is undefined and ``std``
        is NaN. NaN inputs propagate (NumPy semantics).

    Raises:
        ValueError: If ``values`` is empty or not one-dimensional.
    """
    arr = _as_1d(values, "values")
    if arr.size == 0:
        raise ValueError("values is empty; mean_std needs at least one value")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size >= 2 else float("nan")
    return mean, std


@dataclass(frozen=True)
class PairedTTest:
    """Result of :func:`paired_ttest`; unpacks as ``t, p = paired_ttest(a, b)``.

    Attributes:
        t: t statistic of ``b - a`` (positive when ``b`` is larger); NaN or ±inf when degenerate.
        p: Two-sided p-value; NaN when the test is undefined.
        n: Number of pairs.
        mean_diff: Mean of ``b - a`` (NaN for ``n == 0`` or non-finite inputs).
        reason: Why ``p`` is NaN, or ``None`` when the test is defined.
    """

    t: float
    p: float
    n: int
    mean_diff: float
    reason: str | None = None

    def __iter__(self) -> Iterator[float]:
        yield self.t
        yield self.p


def paired_ttest(a: Iterable[float], b: Iterable[float]) -> PairedTTest:
    """Two-sided paired t-test of ``b`` against ``a`` (``scipy.stats.ttest_rel(b, a)``).

    ``a[i]`` and ``b[i]`` must come from the same run pairing (e.g. the same pretraining seed).
    Degenerate cases return ``p = NaN`` with a ``reason``:

    * fewer than two pairs;
    * a non-finite value;
    * all differences equal (zero variance): ``t`` is NaN when they are all zero and ``±inf``
      otherwise, since the statistic divides by the differences' standard deviation.

    Args:
        a: Baseline values, shape ``(n,)``.
        b: Values of the compared method, shape ``(n,)``, paired with ``a``.

    Returns:
        A :class:`PairedTTest` (unpacks to ``(t, p)``).

    Raises:
        ValueError: If ``a`` and ``b`` differ in length or are not one-dimensional.
    """
    x = _as_1d(a, "a")
    y = _as_1d(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length for a paired test, got {x.size} and {y.size}")
    n = int(x.size)
    nan = float("nan")
    if n < 2:
        return PairedTTest(nan, nan, n, float(np.mean(y - x)) if n else nan, f"n={n} < 2 pairs")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return PairedTTest(nan, nan, n, nan, "non-finite value among the inputs")
    d = y - x
    mean_diff = float(d.mean())
    # Differences equal up to floating-point noise count as zero variance; scipy would otherwise
    # report an astronomically large t and p ~ 0 from rounding errors alone.
    scale = max(1.0, float(np.abs(d).max()))
    if float(np.ptp(d)) <= 1e-12 * scale:
        if float(np.abs(d).max()) <= 1e-12:
            return PairedTTest(nan, nan, n, mean_diff, "all paired differences are zero")
        t = math.copysign(math.inf, mean_diff)
        return PairedTTest(t, nan, n, mean_diff, "paired differences have zero variance")
    res = sps.ttest_rel(y, x)
    return PairedTTest(float(res.statistic), float(res.pvalue), n, mean_diff, None)
