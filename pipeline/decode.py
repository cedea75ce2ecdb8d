"""Turning a raw payload into a store image, with a precise reason when that is impossible.

Rules (documented for users in the README):

* encoded files are decoded with Pillow; palette, CMYK, alpha and LA images are converted to RGB/grey;
* 16-bit and 32-bit integer images are scaled linearly from their type's full range to 0–255
  (``v * 255 / max_of_type``), not by their own min/max, so intensities stay comparable between images;
* float arrays must be finite; values in [0, 1] are scaled by 255, others are clipped to 0–255;
* the image is then converted to the store's channel count (BT.601 luma for grey) and, if its size differs from
  the store's, resized so the shorter side fits and centre-cropped (``cv2.INTER_AREA``);
* a JPEG much larger than the store image is decoded in Pillow's *draft* mode: the DCT scales it by 1/2, 1/4 or
  1/8 while decoding, never below ``DRAFT_FACTOR`` × the resized size, and Pillow's box filter does the rest
  (before the channel conversion). That is 3-4× less decoding work for a 1-2 MP dermoscopy image; the stored
  pixels stay within ``DRAFT_TOLERANCE`` (mean absolute difference, grey levels) of a full decode + resize
  (tested). ``input_sha256`` of such a JPEG is the SHA-256 of its file bytes, since its full-size pixels are never
  decoded.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from topo.pipeline import decode_limits as limits
from topo.pipeline.sources.base import Payload, ReadFailure
from topo.store_schema.filtration import BT601_LUMA

DRAFT_FACTOR = 2
DRAFT_TOLERANCE = 2.0
DRAFT_METHOD = f"dct>={DRAFT_FACTOR}x+pillow-box"
"""What a draft build records in its configuration; a change to the draft decode must change it, so that a resume
never mixes the pixels of two decoders (they differ within ``DRAFT_TOLERANCE``)."""
MAX_PIXELS = 64_000_000
"""Larger images are refused (a decompression-bomb guard, and more than any medical 2-D dataset here needs)."""


class SampleError(Exception):
    """One sample cannot be used; ``reason`` goes to the manifest."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Decoded:
    """A usable sample: the store image and the hash of the decoded input."""

    image: np.ndarray  # (H, W, C) uint8 at the store geometry
    input_sha256: str  # of the decoded pixels before conversion and resizing


def _draft(im: Image.Image, height: int, width: int) -> bool:
    """Ask a JPEG to decode reduced in the DCT domain, to no less than ``DRAFT_FACTOR`` × its resized size."""
    if im.format != "JPEG" or im.mode not in ("RGB", "L"):
        return False
    scale = max(height / im.height, width / im.width)
    want = (DRAFT_FACTOR * round(im.width * scale), DRAFT_FACTOR * round(im.height * scale))
    if want[0] * 2 > im.width or want[1] * 2 > im.height:
        return False  # not even a 1/2 reduction fits: decode in full
    return im.draft(im.mode, want) is not None


def _from_bytes(data: bytes, fit: tuple[int, int] | None = None) -> tuple[np.ndarray, bool]:
    """The decoded pixels, and whether they were draft-reduced (only when ``fit`` = (height, width) is given)."""
    if len(data) == 0:
        raise SampleError("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise SampleError(f"image too large: {im.width}x{im.height} pixels > {MAX_PIXELS} allowed")
            limits.check_shape(im.width, im.height)  # from the header, before any pixel is decoded
            drafted = fit is not None and _draft(im, *fit)
            im.load()  # forces the full decode so a truncated file fails here
            if drafted and fit is not None:
                # Fitted here, in Pillow, rather than by _fit: copying the drafted image out to NumPy costs more
                # than its decode, and Pillow's box filter is the same area average (within DRAFT_TOLERANCE).
                return np.asarray(_fit_pil(im, *fit)), drafted
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBA", "RGBX", "1"):
                im = im.convert("RGB" if im.mode != "1" else "L")
            elif im.mode in ("LA", "La"):
                im = im.convert("L")
            return np.asarray(im), drafted
    except SampleError:
        raise
    except limits.DecodeLimitError as e:
        raise SampleError(e.reason) from None
    except Image.DecompressionBombError as e:
        raise SampleError(f"image too large: {e}") from e
    except UnidentifiedImageError as e:
        raise SampleError("not a decodable image (unknown or corrupt format)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise SampleError(f"corrupt or truncated image: {e}") from e


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if a.min() < 0:
            raise SampleError(f"negative pixel values in a {a.dtype} image")
        return np.round(a.astype(np.float64) * (255.0 / info.max)).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise SampleError(f"non-finite values (NaN or inf) in a {a.dtype} image")
        scaled = a * 255.0 if a.size and a.max() <= 1.0 and a.min() >= 0.0 else a
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    raise SampleError(f"unsupported pixel type {a.dtype}")


def _channels(a: np.ndarray, channels: int) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return a[..., None] if channels == 1 else np.repeat(a[..., None], 3, axis=2)
    if a.ndim == 3 and a.shape[2] == 3:
        if channels == 3:
            return a
        return limits.luma_u8(a, BT601_LUMA)[..., None]
    raise SampleError(f"wrong shape {a.shape}: expected HxW or HxWxC with C in 1, 3, 4")


def _fit_size(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Size the image is resized to (its shorter side fits), and the top-left corner of the centre crop."""
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    return nh, nw, (nh - height) // 2, (nw - width) // 2


def _fit_pil(im: Image.Image, height: int, width: int) -> Image.Image:
    nh, nw, top, left = _fit_size(im.height, im.width, height, width)
    return im.resize((nw, nh), Image.Resampling.BOX).crop((left, top, left + width, top + height))


def _fit(a: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = a.shape[:2]
    if (h, w) == (height, width):
        return a
    nh, nw, top, left = _fit_size(h, w, height, width)
    scale = max(height / h, width / w)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    r = cv2.resize(a, (nw, nh), interpolation=interp)
    if r.ndim == 2:
        r = r[..., None]
    return np.ascontiguousarray(r[top : top + height, left : left + width])


def decode(payload: Payload, *, height: int, width: int, channels: int, draft: bool = True) -> Decoded:
    """Decode and normalise one payload; :class:`SampleError` with the reason if it cannot be used.

    ``draft=False`` forces a full JPEG decode (the reference the draft tolerance is measured against).
    """
    if isinstance(payload, ReadFailure):
        raise SampleError(payload.reason)
    drafted = False
    if isinstance(payload, bytes | bytearray):
        a, drafted = _from_bytes(payload, (height, width) if draft else None)
    else:
        a = np.asarray(payload)
    if a.size == 0 or min(a.shape[:2], default=0) == 0:
        raise SampleError(f"zero-size image {a.shape}")
    if a.ndim not in (2, 3):
        raise SampleError(f"wrong shape {a.shape}: expected HxW or HxWxC")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise SampleError(f"image too large: {a.shape[1]}x{a.shape[0]} pixels > {MAX_PIXELS} allowed")
    try:
        limits.check_shape(a.shape[1], a.shape[0])
        limits.check_range(a)
    except limits.DecodeLimitError as e:
        raise SampleError(e.reason) from None
    a = np.ascontiguousarray(a)
    if drafted:
        sha = hashlib.sha256(payload).hexdigest()  # type: ignore[arg-type]
    else:
        sha = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()
    c = _channels(_to_uint8(a), channels)
    img = limits.crop_then_upscale(c, height, width)
    return Decoded(image=_fit(c, height, width) if img is None else img, input_sha256=sha)
