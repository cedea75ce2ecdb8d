"""The ROI interface: a backend maps a batch of store images to boolean masks.

Backends share one signature so that every one of them is checked by the same property tests, and the job
treats them alike. A mask that is empty or covers less than ``min_area`` of the image is *degenerate*: the
whole image is used instead and the sample is marked ``fallback`` with the reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from topo.store_schema.filtration import BT601_LUMA

DEFAULT_MIN_AREA = 0.01


@dataclass(frozen=True)
class RoiResult:
    """A checked mask and, if the whole image had to be used instead, why."""

    mask: np.ndarray  # (H, W) uint8, 1 inside
    fallback_reason: str | None  # set when the whole image was used instead of a degenerate mask


class RoiBackend(ABC):
    """Maps images ``(H, W, C) uint8`` to masks ``(H, W) bool``."""

    name: str = "base"

    def __init__(self, *, min_area: float = DEFAULT_MIN_AREA) -> None:
        if not 0 <= min_area < 1:
            raise ValueError(f"min_area must be in [0, 1), got {min_area}")
        self.min_area = min_area

    @abstractmethod
    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Raw masks, one per image, same height and width."""

    def params(self) -> dict[str, Any]:
        """Everything that changes the masks, recorded in the store and its fingerprint."""
        return {"min_area": self.min_area}

    def checked(self, images: Sequence[np.ndarray]) -> list[RoiResult]:
        """Masks with the degenerate-mask fallback applied."""
        out = []
        for img, m in zip(images, self.masks(images), strict=True):
            m = np.asarray(m).astype(bool)
            if m.shape != img.shape[:2]:
                raise ValueError(f"{self.name} returned a {m.shape} mask for a {img.shape[:2]} image")
            area = float(m.mean())
            if area == 0:
                out.append(RoiResult(np.ones(m.shape, np.uint8), "empty ROI mask; whole image used"))
            elif area < self.min_area:
                out.append(
                    RoiResult(
                        np.ones(m.shape, np.uint8), f"ROI covers {area:.2%} < {self.min_area:.0%}; whole image used"
                    )
                )
            else:
                out.append(RoiResult(m.astype(np.uint8), None))
        return out


class NoRoi(RoiBackend):
    """The whole image."""

    name = "none"

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.ones(im.shape[:2], bool) for im in images]


def grey_uint8(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 3:
        return np.round(image.astype(np.float64) @ BT601_LUMA).astype(np.uint8)
    return image.reshape(image.shape[0], image.shape[1])
