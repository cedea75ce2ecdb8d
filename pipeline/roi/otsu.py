"""A classical CPU ROI: field of view, Otsu threshold, polarity by contrast, morphology, hole filling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from topo.pipeline.roi.base import DEFAULT_MIN_AREA, RoiBackend, grey_uint8
from topo.pipeline.roi.field_of_view import field_of_view
from topo.pipeline.roi.morphology import CROSS, disk, erode, fill_holes, open_close


class OtsuRoi(RoiBackend):
    """Otsu's threshold inside the field of view; the side that is central and off the field's edge is foreground.

    The non-image field (scanner frames, a dermoscope's black vignette; :mod:`field_of_view`) is excluded first, so
    it neither shifts the threshold nor becomes the ROI. The threshold is Otsu's on the field's pixels. Of the two
    sides, the more *central* one is the foreground: the mean of a centred Gaussian weight (sigma =
    ``centre_sigma`` × min(H, W)) over the pixels of its main component. Medical images put the subject in the
    middle, whether it is darker (dermoscopy) or brighter (X-ray, CT) than its surround, and the surround spreads
    to the edges; a large lesion that touches the border is still more central than the skin left in the corners.
    ``polarity`` = ``dark`` or ``bright`` fixes the side instead (a dataset may declare it: ISIC says ``dark``).
    The mask is then opened and closed with a disk of radius ``morph_frac`` × min(H, W) (at least 1 pixel) on an
    edge-padded copy (so pixels at the image edge can be in the mask), its holes are filled (a hole would become a
    spurious H1 class), components on the field's edge are dropped when the most central one is not (corner
    shading), and components smaller than ``keep_frac`` of the largest are dropped.
    """

    name = "otsu"

    def __init__(
        self,
        *,
        min_area: float = DEFAULT_MIN_AREA,
        morph_frac: float = 0.02,
        keep_frac: float = 0.1,
        polarity: str = "auto",
        centre_sigma: float = 0.15,
    ) -> None:
        super().__init__(min_area=min_area)
        if not 0 <= morph_frac < 0.5:
            raise ValueError(f"morph_frac must be in [0, 0.5), got {morph_frac}")
        if not 0 <= keep_frac <= 1:
            raise ValueError(f"keep_frac must be in [0, 1], got {keep_frac}")
        if polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {', '.join(POLARITIES)}, got {polarity!r}")
        if not centre_sigma > 0:
            raise ValueError(f"centre_sigma must be > 0, got {centre_sigma}")
        self.morph_frac, self.keep_frac = morph_frac, keep_frac
        self.polarity, self.centre_sigma = polarity, centre_sigma

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "morph_frac": self.morph_frac,
            "keep_frac": self.keep_frac,
            "polarity": self.polarity,
            "centre_sigma": self.centre_sigma,
        }

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self._mask(grey_uint8(im)) for im in images]

    def _mask(self, g: np.ndarray) -> np.ndarray:
        field = field_of_view(g)
        vals = g[field]
        if vals.size == 0 or vals.min() == vals.max():
            return np.zeros(g.shape, bool)
        bright = (g > threshold_otsu(vals)) & field
        dark = field & ~bright
        fg = self._choose(bright, dark, field)
        r = max(1, round(self.morph_frac * min(g.shape)))
        fg = open_close(fg, disk(r)) & field
        fg = fill_holes(fg)
        lab, n = ndimage.label(fg, structure=np.ones((3, 3)))
        if n == 0:
            return fg
        sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(float)
        # Shading in the corners falls on the lesion's side of the threshold too: when the most central
        # component keeps off the field's edge, components on the edge are surround, not lesion.
        rim = field & ~erode(field, CROSS, border_value=0)
        on_rim = np.zeros(n + 1, bool)
        on_rim[np.unique(lab[rim])] = True
        w = centre_weight(g.shape, self.centre_sigma)
        main = int(np.argmax(ndimage.sum_labels(w, lab, index=np.arange(1, n + 1)))) + 1
        if not on_rim[main]:
            sizes[on_rim[1:]] = 0
        keep = np.zeros(n + 1, bool)
        keep[1:] = sizes >= max(1, self.keep_frac * sizes.max())
        return keep[lab]

    def _choose(self, bright: np.ndarray, dark: np.ndarray, field: np.ndarray) -> np.ndarray:
        if self.polarity != "auto":
            return bright if self.polarity == "bright" else dark
        w = centre_weight(field.shape, self.centre_sigma)
        # Ties (a symmetric image) go to the bright side: the subject of an X-ray or CT.
        return bright if _centrality(bright, w) >= _centrality(dark, w) else dark


def _centrality(side: np.ndarray, w: np.ndarray) -> float:
    """Mean centre weight over the pixels of the side's main component (the one holding most centre weight).

    A lesion or organ is compact and central, its surround is spread out to the edges: the mean (not the sum)
    tells them apart whatever their areas, and a side's stray patches at the periphery (shading, a ruler) do not
    dilute it because only its main component counts.
    """
    lab, n = ndimage.label(side, structure=np.ones((3, 3)))
    if n == 0:
        return -1.0
    mass = ndimage.sum_labels(w, lab, index=np.arange(1, n + 1))
    size = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    k = int(np.argmax(mass))
    return float(mass[k] / size[k])


POLARITIES = ("auto", "dark", "bright")


def centre_weight(shape: tuple[int, int], sigma_frac: float) -> np.ndarray:
    """An isotropic Gaussian centred on the image, sigma = ``sigma_frac`` × the shorter side."""
    h, w = shape
    s = sigma_frac * min(h, w)
    y = (np.arange(h) - (h - 1) / 2) ** 2
    x = (np.arange(w) - (w - 1) / 2) ** 2
    return np.exp(-(y[:, None] + x[None, :]) / (2 * s * s))
