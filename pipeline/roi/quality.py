"""Is a mask one a clinician would accept? Cheap checks that flag implausible ROI masks as ``suspect``.

Each sample gets ``ok`` or ``suspect:<reason>[; <reason>…]`` in the manifest's ``roi_quality`` column. The checks
(thresholds below) catch the ways a threshold ROI goes wrong on real images: it took the surround (area, brighter
than surround when the lesions are known to be dark), it took the dermoscope's field of view, it broke into many
pieces, or it runs along three or more sides and most of the border. What then happens is the ``--roi-suspect`` policy:

* ``auto`` (default): ``fallback`` for a dataset that declares its lesions' polarity (ISIC 2019: dark), where the
  checks know what a plausible mask is; ``keep`` for any other dataset, whose masks are flagged but unchanged;
* ``fallback``: the whole image is used, status ``fallback``, and the reason is kept: a suspect mask would give
  the diagrams the topology of the skin, not the lesion, and the whole image is the neutral choice;
* ``keep``: the mask is used as it is (only flagged);
* ``fail``: the sample fails with the reason (for builds that must not silently degrade).
"""

from __future__ import annotations

import numpy as np

from topo.pipeline.roi.base import grey_uint8
from topo.pipeline.roi.field_of_view import field_of_view
from topo.pipeline.roi.morphology import label

SUSPECT_POLICIES = ("auto", "fallback", "keep", "fail")
DEFAULT_SUSPECT_POLICY = "auto"
MAX_AREA = 0.85
FOV_IOU = 0.9
MAX_COMPONENTS = 3
MIN_COMPONENT = 0.01  # of the image, for a piece to count as a component
MAX_BORDERS = 3
MAX_BORDER_FRAC = 0.5
OK = "ok"
SUSPECT = "suspect"


def roi_quality(image: np.ndarray, mask: np.ndarray, polarity: str = "auto") -> str:
    """``ok`` or ``suspect:<reasons>`` for one image and its (non-fallback) mask.

    ``polarity`` is what the dataset says of its lesions (``dark``, ``bright``) or ``auto`` (no contrast check).
    """
    m = np.asarray(mask).astype(bool)
    g = grey_uint8(image)
    reasons = []
    area = float(m.mean())
    if area >= MAX_AREA:
        reasons.append(f"area {area:.2f} >= {MAX_AREA}")
    fov = field_of_view(g)
    surround = fov & ~m
    if polarity in ("dark", "bright") and m.any() and surround.any():
        inside, outside = float(g[m].mean()), float(g[surround].mean())
        if polarity == "dark" and inside > outside:
            reasons.append(f"ROI brighter than surround ({inside:.0f} > {outside:.0f})")
        if polarity == "bright" and inside < outside:
            reasons.append(f"ROI darker than surround ({inside:.0f} < {outside:.0f})")
    if fov.mean() < 0.97 and (m & fov).sum() >= FOV_IOU * (m | fov).sum():
        reasons.append("ROI equals the field of view")
    lab, n = label(m, connectivity=8)
    # Only pieces of some size count: a hair or a speck beside a lesion is not a fragmented mask.
    n = int((np.bincount(lab.ravel())[1:] >= MIN_COMPONENT * m.size).sum()) if n else 0
    if n > MAX_COMPONENTS:
        reasons.append(f"{n} components > {MAX_COMPONENTS}")
    edges = (m[0], m[-1], m[:, 0], m[:, -1])
    sides = sum(bool(s.any()) for s in edges)
    on_border = float(np.concatenate(edges).mean())
    # A lesion may run off an edge or two; a mask along three sides and most of the border is the surround.
    if sides >= MAX_BORDERS and on_border >= MAX_BORDER_FRAC and area < MAX_AREA:
        reasons.append(f"touches {sides} borders ({on_border:.0%} of the border)")
    return OK if not reasons else f"{SUSPECT}:" + "; ".join(reasons)


def resolve_policy(policy: str, polarity: str) -> str:
    """The policy a build applies: ``auto`` becomes ``fallback`` when the dataset declares a polarity, else ``keep``."""
    if policy not in SUSPECT_POLICIES:
        raise ValueError(f"--roi-suspect must be one of {', '.join(SUSPECT_POLICIES)}, got {policy!r}")
    if policy == "auto":
        return "fallback" if polarity in ("dark", "bright") else "keep"
    return policy
