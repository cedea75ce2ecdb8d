"""A classical CPU ROI: Otsu threshold, morphology, hole filling, main components."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from topo.pipeline.roi.base import DEFAULT_MIN_AREA, RoiBackend, grey_uint8


class OtsuRoi(RoiBackend):
    """Otsu's threshold on the grey image, the side touching the border less taken as foreground.

    Medical images put the subject in the middle and background at the edges, whether the background is dark
    (X-ray, CT) or bright (dermoscopy), so polarity is chosen by border contact rather than fixed. The mask is then
    opened and closed with a disk of ``radius`` = ``morph_frac`` × min(H, W) (at least 1 pixel), its holes are filled
    (a hole in the mask would become a spurious H1 class), and components smaller than ``keep_frac`` of the
    largest are dropped.
    """

    name = "otsu"

    def __init__(self, *, min_area: float = DEFAULT_MIN_AREA, morph_frac: float = 0.02, keep_frac: float = 0.1) -> None:
        super().__init__(min_area=min_area)
        if not 0 <= morph_frac < 0.5:
            raise ValueError(f"morph_frac must be in [0, 0.5), got {morph_frac}")
        if not 0 <= keep_frac <= 1:
            raise ValueError(f"keep_frac must be in [0, 1], got {keep_frac}")
        self.morph_frac, self.keep_frac = morph_frac, keep_frac

    def params(self) -> dict[str, Any]:
        return {**super().params(), "morph_frac": self.morph_frac, "keep_frac": self.keep_frac}

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self._mask(grey_uint8(im)) for im in images]

    def _mask(self, g: np.ndarray) -> np.ndarray:
        if g.min() == g.max():
            return np.zeros(g.shape, bool)
        fg = g > threshold_otsu(g)
        border = np.concatenate([fg[0], fg[-1], fg[:, 0], fg[:, -1]])
        if border.mean() > 0.5:
            fg = ~fg
        r = max(1, round(self.morph_frac * min(g.shape)))
        disk = _disk(r)
        fg = ndimage.binary_closing(ndimage.binary_opening(fg, disk), disk)
        fg = ndimage.binary_fill_holes(fg)
        lab, n = ndimage.label(fg, structure=np.ones((3, 3)))
        if n == 0:
            return fg
        sizes = np.bincount(lab.ravel())[1:]
        keep = np.flatnonzero(sizes >= self.keep_frac * sizes.max()) + 1
        return np.isin(lab, keep)


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r
