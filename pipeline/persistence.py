"""Cubical persistence of an image's region of interest, reduced to fixed-size top-k diagrams.

The filtration itself (complex, values, ROI, infinite deaths, selection) is part of the store contract and is
defined in :mod:`topo.store_schema.filtration`; this module computes its diagrams with GUDHI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gudhi.sklearn.cubical_persistence import CubicalPersistence

from topo.store_schema.filtration import BT601_LUMA, Direction, FiltrationSpec, filtration, grey_levels

__all__ = [
    "BT601_LUMA",
    "Direction",
    "FiltrationSpec",
    "TopK",
    "diagrams",
    "filtration",
    "grey_levels",
    "top_k",
    "topk_diagrams",
]

_ESTIMATOR = CubicalPersistence(homology_dimensions=[0, 1], input_type="top_dimensional_cells", n_jobs=1).fit([])


def diagrams(filtrations: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Full (H0, H1) diagrams of each filtration, infinite deaths capped at the largest finite value."""
    out = []
    for f, (h0, h1) in zip(filtrations, _ESTIMATOR.transform(list(filtrations)), strict=True):
        finite = f[np.isfinite(f)]
        cap = float(finite.max()) if finite.size else 0.0
        out.append((_cap(h0, cap), _cap(h1, cap)))
    return out


def _cap(d: np.ndarray, cap: float) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64).reshape(-1, 2).copy()
    d[~np.isfinite(d[:, 1]), 1] = cap
    return d


def top_k(diagram: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """The ``k`` most persistent pairs in the documented total order, zero-padded to ``(k, 2)`` float32."""
    d = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    order = np.lexsort((d[:, 1], d[:, 0], -(d[:, 1] - d[:, 0])))[:k]
    out = np.zeros((k, 2), dtype=np.float32)
    out[: len(order)] = d[order]
    return out, len(order)


@dataclass
class TopK:
    """Top-k diagrams of a batch: ``h0 (B,k0,2)``, ``n_h0 (B,)``, ``h1 (B,k1,2)``, ``n_h1 (B,)``."""

    h0: np.ndarray
    n_h0: np.ndarray
    h1: np.ndarray
    n_h1: np.ndarray
    full: list[tuple[np.ndarray, np.ndarray]] | None = None  # every (H0, H1) pair, when asked for


def topk_diagrams(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray | None], spec: FiltrationSpec, *, keep_full: bool = False
) -> TopK:
    """Top-k diagrams of a batch of images restricted to their ROIs (one GUDHI call for the batch).

    With ``keep_full`` the complete (capped) diagrams come back too, in ``TopK.full``.
    """
    filts = [filtration(im, m, spec) for im, m in zip(images, masks, strict=True)]
    b = len(filts)
    res = TopK(
        np.zeros((b, spec.k0, 2), np.float32),
        np.zeros(b, np.int16),
        np.zeros((b, spec.k1, 2), np.float32),
        np.zeros(b, np.int16),
    )
    full = diagrams(filts)
    for i, (h0, h1) in enumerate(full):
        res.h0[i], res.n_h0[i] = top_k(h0, spec.k0)
        res.h1[i], res.n_h1[i] = top_k(h1, spec.k1)
    if keep_full:
        res.full = full
    return res
