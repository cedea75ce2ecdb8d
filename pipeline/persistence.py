"""Cubical persistence of an image's region of interest, reduced to fixed-size top-k diagrams.

The filtration, exactly (this text is also stored in each store's attributes, :func:`FiltrationSpec.to_json`):

* **Complex**: GUDHI cubical complex, T-construction: pixels are the top-dimensional cells (H0 is 8-connected).
* **Values**: grey level in [0, 1]. An RGB image is reduced to ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B)
  before scaling by 1/255. ``sublevel`` (default) adds dark pixels first; ``superlevel`` uses ``1 - grey`` so
  bright structures are born first.
* **ROI**: pixels outside the mask get ``+inf`` and so never take part before the very end.
* **Infinite deaths**: the essential H0 class and every class that only dies when the excluded background enters
  get the **maximum filtration value inside the ROI** as death, so all stored values are finite and a bottleneck
  matching never faces unequal numbers of infinite points.
* **Selection**: pairs are ordered by persistence (death - birth) descending, ties by birth then death ascending
  (a total order, so the result does not depend on GUDHI's output order), and the first ``k0`` H0 / ``k1`` H1 pairs
  are kept. Rows past the valid count are zeros.
* **Field**: GUDHI's dedicated 2-D algorithm ignores the coefficient field; 2-D cubical homology has no torsion, so
  every field gives the same diagrams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from gudhi.sklearn.cubical_persistence import CubicalPersistence

Direction = Literal["sublevel", "superlevel"]
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class FiltrationSpec:
    """How diagrams are computed; recorded in the store and checked by every consumer."""

    direction: Direction = "sublevel"
    k0: int = 48
    k1: int = 96
    full_diagrams: bool = False  # also keep every pair (Parquet parts beside the arrays)

    def __post_init__(self) -> None:
        if self.direction not in ("sublevel", "superlevel"):
            raise ValueError(f"direction must be 'sublevel' or 'superlevel', got {self.direction!r}")
        if self.k0 < 1 or self.k1 < 1:
            raise ValueError(f"k0 and k1 must be positive, got k0={self.k0}, k1={self.k1}")

    def to_json(self) -> dict[str, Any]:
        return {
            "complex": "cubical",
            "input_type": "top_dimensional_cells",
            "construction": "T (pixels are top cells; H0 8-connected)",
            "values": "grey in [0,1]; RGB -> ITU-R BT.601 luma; divided by 255",
            "direction": self.direction,
            "outside_roi": "+inf (excluded until the end)",
            "infinite_deaths": "set to the maximum filtration value inside the ROI",
            "ordering": "persistence descending, then birth, then death ascending",
            "padding": "zeros past n_h0 / n_h1",
            "homology_dimensions": [0, 1],
            "coefficient_field": "any (2-D cubical homology is torsion-free; GUDHI's 2-D path ignores the field)",
            "min_persistence": 0.0,
            "k0": self.k0,
            "k1": self.k1,
            "full_diagrams": self.full_diagrams,
            "backend": "gudhi.sklearn.cubical_persistence.CubicalPersistence (dedicated 2-D algorithm)",
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FiltrationSpec:
        return cls(
            direction=d["direction"], k0=int(d["k0"]), k1=int(d["k1"]), full_diagrams=bool(d.get("full_diagrams"))
        )


def grey_levels(image: np.ndarray) -> np.ndarray:
    """uint8 HxW or HxWxC image → float64 HxW in [0, 1] (BT.601 luma for 3 channels)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        if img.shape[2] != 3:
            raise ValueError(f"expected 1 or 3 channels, got shape {img.shape}")
        img = img.astype(np.float64) @ _LUMA
    elif img.ndim != 2:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {img.shape}")
    return np.asarray(img, dtype=np.float64) / 255.0


def filtration(image: np.ndarray, mask: np.ndarray | None, spec: FiltrationSpec) -> np.ndarray:
    """Filtration values of the top cells: grey levels (or their complement), ``+inf`` outside the ROI."""
    f = grey_levels(image)
    if spec.direction == "superlevel":
        f = 1.0 - f
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        if m.shape != f.shape:
            raise ValueError(f"mask shape {m.shape} does not match image shape {f.shape}")
        if not m.any():
            raise ValueError("empty ROI mask")
        f = np.where(m, f, np.inf)
    return f


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
