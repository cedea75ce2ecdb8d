"""The filtration a store's diagrams are computed with: part of the store contract.

The persistence kernel (:mod:`topo.pipeline.persistence`) computes diagrams *of* this filtration; readers of a
store (the trainer, TDA exports) check diagrams against it, so it lives here and imports nothing of the pipeline.

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

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from topo.store_schema.layout import DEFAULT_K0, DEFAULT_K1

Direction = Literal["sublevel", "superlevel"]
BT601_LUMA = np.array([0.299, 0.587, 0.114])
"""ITU-R BT.601 luma weights (R, G, B): the one definition of grey from colour in topo."""


@dataclass(frozen=True)
class FiltrationSpec:
    """How diagrams are computed; recorded in the store and checked by every consumer."""

    direction: Direction = "sublevel"
    k0: int = DEFAULT_K0
    k1: int = DEFAULT_K1
    full_diagrams: bool = False  # also keep every pair (Parquet parts beside the arrays)

    def __post_init__(self) -> None:
        if self.direction not in ("sublevel", "superlevel"):
            raise ValueError(f"direction must be 'sublevel' or 'superlevel', got {self.direction!r}")
        if self.k0 < 1 or self.k1 < 1:
            raise ValueError(f"k0 and k1 must be positive, got k0={self.k0}, k1={self.k1}")

    def to_json(self) -> dict[str, Any]:
        """The full definition as stored in the ``persistence`` attribute (readers check against it)."""
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
        """The spec back from a store's ``persistence`` attribute (the descriptive fields are not needed)."""
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
        img = img.astype(np.float64) @ BT601_LUMA
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


def luma_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 → uint8 HxW grey by :data:`BT601_LUMA` (rounded); other shapes are returned unchanged."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 3:
        return np.round(img.astype(np.float64) @ BT601_LUMA).astype(np.uint8)
    return img
