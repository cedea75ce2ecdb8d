"""Bounds on decoding one sample, so that one hostile or odd file costs one failure record, never the build.

* **Shape**: an image whose longer side is more than :data:`MAX_ASPECT` times its shorter side is refused before
  its pixels are decoded (a 1x200000 PNG is 200 KB on disk, but fitting it to a square store image would mean a
  30 GB resize). Pixel counts are capped by :data:`topo.pipeline.decode.MAX_PIXELS` as before.
* **Crop before upscaling**: an image smaller than the store geometry is centre-cropped to the store's aspect ratio
  first and then enlarged, so the resize never allocates more than the store image itself. Downscaling keeps
  the documented order (resize so the shorter side fits, then centre-crop).
* **Memory per sample**: with both rules (and the grey conversion done in row blocks, :func:`luma_u8`), a sample
  costs a small multiple of its decoded input (at most ``MAX_PIXELS`` pixels x channels x bytes per value, 192 MB
  for a 64 MP 8-bit RGB image). Measured on the largest allowed 8-bit image, an 8000x8000 RGB PNG: peak process
  RSS 846 MB (to grey or RGB; 233 MB before decoding, its 192 MB of file bytes included); 8000x8000 grey: 296 MB.
  16-bit inputs double the decoded part. Typical medical images (under 10 MP) stay near 150 MB.
* **Intensity range**: an integer image of more than 16 bits whose values would all scale to 0 from the type's
  full range, and a float image with negative values or values above 255, have no known intensity scale; they
  are refused with the range in the reason rather than stored black (or white) without a word.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_ASPECT = 16.0
"""Longest side / shortest side above which an image is refused (medical 2-D images here are at most ~3:1)."""


class DecodeLimitError(Exception):
    """A sample outside the bounds above; ``reason`` goes to the manifest (the caller wraps it as SampleError)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_shape(width: int, height: int) -> None:
    """Refuse an extreme aspect ratio before any pixel is decoded or resized."""
    short, long = min(width, height), max(width, height)
    if short > 0 and long / short > MAX_ASPECT:
        raise DecodeLimitError(
            f"extreme aspect ratio: {width}x{height} pixels ({long / short:.0f}:1 > {MAX_ASPECT:.0f}:1 allowed)"
        )


def check_range(a: np.ndarray) -> None:
    """Refuse pixel values whose intensity scale is unknown (they would be stored black or white silently)."""
    if a.size == 0:
        return
    if np.issubdtype(a.dtype, np.integer) and a.dtype.itemsize > 2:
        top = int(a.max())
        if top * 255.0 / np.iinfo(a.dtype).max < 0.5:
            raise DecodeLimitError(
                f"{a.dtype} image with values up to {top}: scaled from the type's full range it would be all "
                "black; convert it to 8 or 16 bit"
            )
    elif np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all():
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 255.0:
            raise DecodeLimitError(
                f"{a.dtype} image with values in [{lo:.4g}, {hi:.4g}]: its intensity scale is unknown "
                "(expected [0, 1] or [0, 255]); normalise it first"
            )


def crop_then_upscale(a: np.ndarray, height: int, width: int) -> np.ndarray | None:
    """The store image of ``a`` if it must be enlarged (centre-crop to the target aspect, then resize), else None."""
    h, w = a.shape[:2]
    if max(height / h, width / w) <= 1:
        return None  # downscaling: the documented resize-then-crop, which allocates less than the input
    target = width / height
    ch, cw = (h, max(1, round(h * target))) if w / h > target else (max(1, round(w / target)), w)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(a[top : top + ch, left : left + cw])
    r = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    return r[..., None] if r.ndim == 2 else r


LUMA_BLOCK_PIXELS = 1 << 20  # pixels converted per step: the float64 temporaries stay at ~32 MB


def luma_u8(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Luma (``weights``: BT.601) of an ``(H, W, 3)`` uint8 image, ``(H, W)`` uint8, in row blocks.

    The same arithmetic as one ``a.astype(float64) @ weights`` (so the same bytes), without its 24 bytes per pixel
    of temporaries at once: a 64 MP image would otherwise need 2 GB just for this step.
    """
    out = np.empty(a.shape[:2], np.uint8)
    rows = max(1, LUMA_BLOCK_PIXELS // max(1, a.shape[1]))
    for r in range(0, a.shape[0], rows):
        out[r : r + rows] = np.round(a[r : r + rows].astype(np.float64) @ weights).astype(np.uint8)
    return out
