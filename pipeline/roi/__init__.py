"""ROI backends by name: ``none`` (whole image), ``otsu`` (CPU, classical), ``sam`` (Segment Anything, GPU).

A backend is one module plus one :func:`register_roi` line below (see ``registry.py``).
"""

from __future__ import annotations

from typing import Any

from topo.pipeline.roi.base import NoRoi, RoiBackend, RoiResult
from topo.pipeline.roi.otsu import OtsuRoi
from topo.pipeline.roi.registry import RoiEntry, register_roi, roi_entry, roi_help, roi_names, unregister_roi
from topo.pipeline.roi.sam_spec import sam_spec

register_roi(RoiEntry("none", NoRoi, "the whole image"))
register_roi(RoiEntry("otsu", OtsuRoi, "classical threshold, CPU"))
_SAM = "topo.pipeline.roi.sam_batched:BatchedSamRoi"  # SamRoi with the throughput path for box mode
register_roi(RoiEntry("sam", _SAM, "Segment Anything, on GPU actors", {"GPU": 1}, sam_spec))

__all__ = [
    "NoRoi",
    "OtsuRoi",
    "RoiBackend",
    "RoiEntry",
    "RoiResult",
    "make_roi",
    "register_roi",
    "roi_entry",
    "roi_help",
    "roi_names",
    "unregister_roi",
]


def make_roi(name: str, **params: Any) -> RoiBackend:
    """Build a registered backend by name; heavy backends are imported only here."""
    return roi_entry(name).build(**params)
