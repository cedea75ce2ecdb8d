"""ROI backends by name: ``none`` (whole image), ``otsu`` (CPU, classical), ``sam`` (Segment Anything, GPU)."""

from __future__ import annotations

from typing import Any

from topo.pipeline.roi.base import NoRoi, RoiBackend, RoiResult
from topo.pipeline.roi.otsu import OtsuRoi

ROI_BACKENDS: dict[str, type[RoiBackend]] = {"none": NoRoi, "otsu": OtsuRoi}
ROI_NAMES: tuple[str, ...] = ("none", "otsu", "sam")

__all__ = ["ROI_BACKENDS", "ROI_NAMES", "NoRoi", "OtsuRoi", "RoiBackend", "RoiResult", "make_roi"]


def make_roi(name: str, **params: Any) -> RoiBackend:
    """Build a backend; SAM is imported only when asked for (it pulls in torchvision and loads weights)."""
    if name == "sam":
        from topo.pipeline.roi.sam import SamRoi

        return SamRoi(**params)
    if name not in ROI_BACKENDS:
        raise ValueError(f"unknown ROI backend {name!r}; valid: {', '.join(ROI_NAMES)}")
    return ROI_BACKENDS[name](**params)
