"""The field of view: the part of an image that is image, not scanner frame or dermoscope vignette.

Two kinds of non-image field occur in real acquisitions and both defeat a threshold chosen on the whole image:

* **frames**: thin constant bands (white or black) along one or more sides, added by some scanners. A side is
  stripped while its outermost line is nearly constant (std < ``FRAME_STD``) and nearly black or white, for at
  most ``FRAME_MAX`` of the image; a longer constant run is background (a generic CT/X-ray), not a frame.
* **vignette**: the black outside of a contact dermoscope's circular field. It is the near-black region connected
  to the image border, accepted only when it reaches at least two corners (a dark lesion touching one side does
  not), then the field is shrunk by a small margin so the blurred rim of the disc is not taken for a lesion.

Everything here is symmetric under flips and quarter turns, so the ROI stays equivariant.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from topo.pipeline.roi.morphology import border_components, disk, erode, fill_holes

FRAME_STD = 3.0
FRAME_MAX = 0.08
FRAME_DARK, FRAME_BRIGHT = 15, 240
VIGNETTE_MAX = 40
VIGNETTE_FRAC = 0.3
RIM_FRAC = 0.03


def frame_box(g: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` bounds (exclusive stops) of the image inside any constant frame."""
    h, w = g.shape
    top, bottom, left, right = 0, h, 0, w
    cap_h, cap_w = int(FRAME_MAX * h), int(FRAME_MAX * w)

    def frame_line(line: np.ndarray) -> bool:
        m = float(line.mean())
        return float(line.std()) < FRAME_STD and (m <= FRAME_DARK or m >= FRAME_BRIGHT)

    # Each side independently: count its constant run, accept it only if short (a frame, not a background).
    run = 0
    while run <= cap_h and run < h and frame_line(g[run]):
        run += 1
    top = run if run <= cap_h else 0
    run = 0
    while run <= cap_h and run < h and frame_line(g[h - 1 - run]):
        run += 1
    bottom = h - run if run <= cap_h else h
    run = 0
    while run <= cap_w and run < w and frame_line(g[:, run]):
        run += 1
    left = run if run <= cap_w else 0
    run = 0
    while run <= cap_w and run < w and frame_line(g[:, w - 1 - run]):
        run += 1
    right = w - run if run <= cap_w else w
    if bottom - top < h // 2 or right - left < w // 2:
        return 0, h, 0, w
    return top, bottom, left, right


def vignette(g: np.ndarray) -> np.ndarray:
    """Near-black pixels connected to the border, if they reach at least two corners; else nothing."""
    med = float(np.median(g))
    dark = g < min(VIGNETTE_MAX, VIGNETTE_FRAC * med)
    if not dark.any():
        return np.zeros_like(dark)
    outer = border_components(dark)
    h, w = g.shape
    k = max(1, min(h, w) // 32)
    corners = [outer[:k, :k], outer[:k, -k:], outer[-k:, :k], outer[-k:, -k:]]
    if sum(bool(c.mean() > 0.5) for c in corners) < 2:
        return np.zeros_like(dark)
    return outer


def field_of_view(g: np.ndarray) -> np.ndarray:
    """Boolean mask of the image field (True inside) of a grey ``(H, W)`` uint8 image.

    The ROI backend masks a whole chunk, then the quality check asks again for the field of each of its images: the
    fields of the last ``FIELD_MEMO`` images are kept (bit-packed, keyed by a digest of the pixels, so a different
    image never gets one), and a fresh copy is returned.
    """
    key = (g.shape, g.dtype.str, hashlib.blake2b(np.ascontiguousarray(g).data, digest_size=16).digest())
    packed = _memo.get(key)
    if packed is not None:
        _memo.move_to_end(key)
        return np.unpackbits(packed, count=g.size).reshape(g.shape).astype(bool)
    field = _field_of_view(g)
    _memo[key] = np.packbits(field)
    if len(_memo) > FIELD_MEMO:
        _memo.popitem(last=False)
    return field


FIELD_MEMO = 256  # more than a chunk's images
_memo: OrderedDict[tuple, np.ndarray] = OrderedDict()


def _field_of_view(g: np.ndarray) -> np.ndarray:
    h, w = g.shape
    field = np.zeros((h, w), bool)
    top, bottom, left, right = frame_box(g)
    inner = g[top:bottom, left:right]
    outside = vignette(inner)
    if outside.any():
        f = fill_holes(~outside)
        r = max(1, round(RIM_FRAC * min(inner.shape)))
        f = erode(f, disk(r), border_value=1)
        if f.mean() < 0.2:  # not a plausible field: a dark image, not a vignette
            f = np.ones_like(f)
    else:
        f = np.ones(inner.shape, bool)
    field[top:bottom, left:right] = f
    return field
