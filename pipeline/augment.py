"""Augmentation operators for topology-aware views: the one definition shared by calibration and the trainer.

Every operator has the signature ``fn(image, mask, s, rng) -> (image, mask)``:

* ``image``: uint8, ``HxW`` or ``HxWxC`` (C = 1 or 3); the result has the same dtype and shape.
* ``mask``: uint8 ``HxW`` region of interest, or ``None``. Geometric operators move it with the image;
  all others return it unchanged (the same object).
* ``s``: a normalised intensity in ``[0, 1]``, mapped to the operator's native parameter by the table below.
  Spatial parameters are a fraction of ``min(H, W)`` so that a 28² and a 224² image see comparable changes.
* ``rng``: a :class:`numpy.random.Generator`; the only source of randomness, so a seed fixes the result.

The input arrays are never modified in place.

============== ============== ============================================================ =================
operator       category       native parameter (unit) as a function of ``s``               identity at s = 0
============== ============== ============================================================ =================
hflip          homeomorphism  none: mirror left-right (``s`` ignored)                      no (always flips)
vflip          homeomorphism  none: mirror top-bottom (``s`` ignored)                      no (always flips)
rot90          homeomorphism  quarter turns k = 1 (s < 1/3), 2 (s < 2/3), 3 (else);        no (always turns)
                              a non-square image always gets k = 2 (keeps its shape)
rotate         homeomorphism  angle = ±30·s degrees (sign drawn from ``rng``), bilinear,   yes
               (approximate)  reflected border; the mask turns with nearest sampling
gaussian_noise boundary       additive N(0, σ²) per pixel and channel,                     yes
                              σ = 20·s grey levels (of 255), then clipped and rounded
gaussian_blur  smoothing      σ = 0.06·s·min(H, W) pixels (1.68 px at 28², 13.4 px at      yes
                              224² for s = 1), reflected border
contrast       intensity      ``mean + c·(x − mean)``, c = 2^(±0.5·s) (sign drawn from     yes
                              ``rng``; factor 0.71–1.41 at s = 1), mean over the image
brightness     intensity      offset ±40·s grey levels (sign drawn from ``rng``),          yes
                              clipped to [0, 255]
dilation       morphology     grey dilation (local max) over a disk of radius              yes
                              r = 0.05·s·min(H, W) pixels (1.4 px at 28², 11.2 at 224²);
                              fractional r blends the disks of radius ⌊r⌋ and ⌊r⌋ + 1
erosion        morphology     grey erosion (local min), same disk as dilation              yes
============== ============== ============================================================ =================

Disks hold the offsets with dx² + dy² ≤ r² (radius 1 is the 5-pixel plus). A disk family alone is a step
function of ``s``, and on a 28² image its first step already changes δ by about 25 %, so the morphology
operators blend the two nearest integer-radius results by the fractional part of r: they are continuous in
``s``.

The exact homeomorphisms (``hflip``, ``vflip``, ``rot90``) permute pixels along a symmetry of the square
grid, so the cubical persistence diagram is unchanged: δ = 0 exactly. ``rotate`` resamples, so it is only
approximately topology-preserving. The maxima above were chosen on BreastMNIST so that the calibration bands
(δ of 5–25 %) fall inside ``s ∈ (0, 1]`` for the single operators; calibration measures the real mapping per
store.

A :data:`Combination` is a tuple of 1–3 operator names applied in order with the same ``s``
(:func:`apply`). :data:`DEFAULT_COMBINATIONS` lists what calibration evaluates by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Mask = np.ndarray | None
OperatorFn = Callable[[np.ndarray, Mask, float, np.random.Generator], tuple[np.ndarray, Mask]]
Category = Literal["homeomorphism", "boundary", "smoothing", "intensity", "morphology"]
Combination = tuple[str, ...]
"""Operator names applied in order with the same intensity ``s``; 1 to 3 of them."""

# Native maxima reached at s = 1 (see the table in the module docstring).
ROTATE_MAX_DEG = 30.0
NOISE_MAX_STD = 20.0
BLUR_MAX_SIGMA_FRAC = 0.06
CONTRAST_MAX_LOG2 = 0.5
BRIGHTNESS_MAX = 40.0
MORPH_MAX_RADIUS_FRAC = 0.05

MAX_COMBINATION_LENGTH = 3


@dataclass(frozen=True)
class Operator:
    """One augmentation operator.

    Attributes:
        name: registry key.
        category: the paper's operation category.
        fn: ``fn(image, mask, s, rng) -> (image, mask)``.
        native: what ``s`` maps to, with its unit.
        geometric: whether the operator moves pixels (and therefore the mask).
        identity_at_zero: whether ``s = 0`` returns the input unchanged.
    """

    name: str
    category: Category
    fn: OperatorFn
    native: str
    geometric: bool
    identity_at_zero: bool

    def __call__(self, image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
        """Apply the operator after checking the arguments (see the module docstring)."""
        _check_args(image, mask, s)
        return self.fn(image, mask, float(s), rng)


# --- helpers ------------------------------------------------------------------------------------------------


def _check_args(image: np.ndarray, mask: Mask, s: float) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image))}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"image must be HxW or HxWxC with C in (1, 3), got shape {image.shape}")
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    if not (0.0 <= float(s) <= 1.0) or math.isnan(float(s)):
        raise ValueError(f"intensity s must lie in [0, 1], got {s!r}")


def _min_side(image: np.ndarray) -> int:
    return min(image.shape[0], image.shape[1])


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _cv2_keep_shape(image: np.ndarray, out: np.ndarray) -> np.ndarray:
    # OpenCV drops a trailing channel axis of length 1; put it back so the shape contract holds.
    return out.reshape(image.shape)


def _sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _disk(radius: int) -> np.ndarray:
    """Disk footprint of integer radius r: offsets with dx² + dy² ≤ r² (r = 1 is the 5-pixel plus)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (xx * xx + yy * yy <= radius * radius).astype(np.uint8)


# --- operators ----------------------------------------------------------------------------------------------


def hflip(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Mirror left-right; ``s`` is ignored."""
    return image[:, ::-1].copy(), None if mask is None else mask[:, ::-1].copy()


def vflip(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Mirror top-bottom; ``s`` is ignored."""
    return image[::-1].copy(), None if mask is None else mask[::-1].copy()


def rot90_turns(s: float, height: int, width: int) -> int:
    """Number of quarter turns for intensity ``s`` (1, 2 or 3; always 2 for a non-square image)."""
    if height != width:
        return 2
    return 1 + min(int(s * 3.0), 2)


def rot90(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Rotate by k quarter turns counter-clockwise, k from ``s`` (see :func:`rot90_turns`)."""
    k = rot90_turns(s, image.shape[0], image.shape[1])
    out = np.rot90(image, k, axes=(0, 1)).copy()
    return out, None if mask is None else np.rot90(mask, k).copy()


def rotate(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Rotate about the centre by ±30·s degrees with a reflected border."""
    sign = _sign(rng)  # drawn even at s = 0 so the rng stream does not depend on s
    angle = sign * ROTATE_MAX_DEG * s
    if angle == 0.0:
        return image.copy(), None if mask is None else mask.copy()
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    out = _cv2_keep_shape(image, out)
    if mask is not None:
        # OpenCV has no bool images: warp a uint8 view and give the mask back in its own dtype.
        warped = cv2.warpAffine(
            mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101
        )
        mask = warped.astype(mask.dtype, copy=False)
    return out, mask


def gaussian_noise(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Add N(0, (20·s)²) grey-level noise to every pixel and channel, then clip and round."""
    # Draw the noise even at s = 0 so that the rng stream consumed does not depend on s.
    noise = rng.standard_normal(image.shape)
    if s == 0.0:
        return image.copy(), mask
    return _to_uint8(image.astype(np.float64) + NOISE_MAX_STD * s * noise), mask


def gaussian_blur(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Gaussian blur with σ = 0.06·s·min(H, W) pixels (reflected border)."""
    sigma = BLUR_MAX_SIGMA_FRAC * s * _min_side(image)
    if sigma == 0.0:
        return image.copy(), mask
    # ksize (0, 0): OpenCV derives the kernel size from sigma (about ±3σ for uint8 input).
    out = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return _cv2_keep_shape(image, out), mask


def contrast(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Scale deviations from the mean grey level by 2^(±0.5·s)."""
    factor = 2.0 ** (_sign(rng) * CONTRAST_MAX_LOG2 * s)
    if factor == 1.0:
        return image.copy(), mask
    x = image.astype(np.float64)
    # The centre is the mean over the whole image (as torchvision's adjust_contrast), not over the ROI,
    # so the operator does not need the mask and behaves the same at training time.
    mean = float(x.mean())
    return _to_uint8(mean + factor * (x - mean)), mask


def brightness(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Add ±40·s grey levels, clipped to [0, 255]."""
    offset = _sign(rng) * BRIGHTNESS_MAX * s
    if offset == 0.0:
        return image.copy(), mask
    return _to_uint8(image.astype(np.float64) + offset), mask


def _morph(image: np.ndarray, s: float, op: int) -> np.ndarray:
    radius = MORPH_MAX_RADIUS_FRAC * s * _min_side(image)
    if radius == 0.0:
        return image.copy()
    # A family of disks is a step function of the radius, and on a 28² image the first step (the 5-pixel plus)
    # already changes δ by ~25 %: no weak view would exist. Interpolating between the disks of the two nearest
    # integer radii makes the operator continuous in s (by stability, δ then moves continuously too).
    lo = math.floor(radius)
    t = radius - lo
    a = _morph_disk(image, lo, op)
    if t == 0.0:
        return a
    b = _morph_disk(image, lo + 1, op)
    return _to_uint8((1.0 - t) * a.astype(np.float64) + t * b.astype(np.float64))


def _morph_disk(image: np.ndarray, radius: int, op: int) -> np.ndarray:
    if radius == 0:
        return image.copy()
    # OpenCV's default border for dilate/erode leaves border pixels out of the max/min (no artificial values).
    out = cv2.morphologyEx(image, op, _disk(radius))
    return _cv2_keep_shape(image, out)


def dilation(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Grey-scale dilation (local maximum) over a disk of radius 0.05·s·min(H, W) pixels."""
    return _morph(image, s, cv2.MORPH_DILATE), mask


def erosion(image: np.ndarray, mask: Mask, s: float, rng: np.random.Generator) -> tuple[np.ndarray, Mask]:
    """Grey-scale erosion (local minimum) over a disk of radius 0.05·s·min(H, W) pixels."""
    return _morph(image, s, cv2.MORPH_ERODE), mask


# --- registry -----------------------------------------------------------------------------------------------

_MORPH_NATIVE = f"disk radius {MORPH_MAX_RADIUS_FRAC:g}·s·min(H, W) pixels (fractional radii blended)"
_OPERATOR_LIST = [
    Operator("hflip", "homeomorphism", hflip, "none (mirror left-right)", True, False),
    Operator("vflip", "homeomorphism", vflip, "none (mirror top-bottom)", True, False),
    Operator(
        "rot90",
        "homeomorphism",
        rot90,
        "quarter turns k = 1, 2, 3 for s in [0, 1/3), [1/3, 2/3), [2/3, 1] (k = 2 if H != W)",
        True,
        False,
    ),
    Operator("rotate", "homeomorphism", rotate, f"angle ±{ROTATE_MAX_DEG:g}·s degrees", True, True),
    Operator(
        "gaussian_noise",
        "boundary",
        gaussian_noise,
        f"noise std {NOISE_MAX_STD:g}·s grey levels",
        False,
        True,
    ),
    Operator(
        "gaussian_blur",
        "smoothing",
        gaussian_blur,
        f"sigma {BLUR_MAX_SIGMA_FRAC:g}·s·min(H, W) pixels",
        False,
        True,
    ),
    Operator("contrast", "intensity", contrast, f"factor 2^(±{CONTRAST_MAX_LOG2:g}·s) about the mean", False, True),
    Operator("brightness", "intensity", brightness, f"offset ±{BRIGHTNESS_MAX:g}·s grey levels", False, True),
    Operator("dilation", "morphology", dilation, _MORPH_NATIVE, False, True),
    Operator("erosion", "morphology", erosion, _MORPH_NATIVE, False, True),
]

OPERATORS: dict[str, Operator] = {op.name: op for op in _OPERATOR_LIST}
"""Every augmentation operator, by name."""

EXACT_HOMEOMORPHISMS: tuple[str, ...] = ("hflip", "vflip", "rot90")
"""Operators that permute pixels along a grid symmetry: the persistence diagram is unchanged (δ = 0)."""

DEFAULT_COMBINATIONS: tuple[Combination, ...] = (
    # Singles. The three exact homeomorphisms have δ = 0 at every s, so one of them (hflip) stands for all
    # three: it is the calibration's sanity check, not a source of weak/strong views.
    ("hflip",),
    ("rotate",),
    ("gaussian_noise",),
    ("gaussian_blur",),
    ("contrast",),
    ("brightness",),
    ("dilation",),
    ("erosion",),
    # Combinations, one per pairing of categories the paper describes:
    ("gaussian_noise", "gaussian_blur"),  # perturb the boundary, then smooth part of it away
    ("contrast", "dilation"),  # intensity change followed by morphology
    ("gaussian_blur", "erosion", "brightness"),  # smoothing + morphology + intensity
    ("rotate", "gaussian_noise"),  # an approximate homeomorphism followed by boundary perturbation
    ("brightness", "erosion"),  # intensity shift, then morphology (clipping interacts with the min filter)
)
"""What calibration evaluates by default: 8 singles and 5 multi-operator combinations."""


def combination_name(combination: Combination | str) -> str:
    """Canonical name of a combination: operator names joined by ``+`` (``gaussian_noise+gaussian_blur``)."""
    return "+".join(parse_combination(combination))


def parse_combination(combination: Combination | Sequence[str] | str) -> Combination:
    """Validate a combination given as a tuple of names or a ``+``-joined string.

    Raises:
        ValueError: an unknown operator name (the valid ones are listed), or not 1–3 operators.
    """
    names = tuple(combination.split("+")) if isinstance(combination, str) else tuple(combination)
    names = tuple(n.strip() for n in names)
    if not 1 <= len(names) <= MAX_COMBINATION_LENGTH:
        raise ValueError(
            f"a combination has 1 to {MAX_COMBINATION_LENGTH} operators, got {len(names)}: {combination!r}"
        )
    for n in names:
        get_operator(n)
    return names


def get_operator(name: str) -> Operator:
    """The operator called ``name``.

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    try:
        return OPERATORS[name]
    except (KeyError, TypeError):
        valid = ", ".join(OPERATORS)
        raise ValueError(f"unknown augmentation operator {name!r}; valid operators: {valid}") from None


def apply(
    combination: Combination | str,
    image: np.ndarray,
    mask: Mask,
    s: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, Mask]:
    """Apply the operators of ``combination`` in order, all with intensity ``s``.

    Args:
        combination: operator names (tuple) or a ``+``-joined string.
        image: uint8 ``HxW`` or ``HxWxC``.
        mask: uint8 ``HxW`` ROI or ``None``; moved by geometric operators only.
        s: normalised intensity in ``[0, 1]``.
        rng: source of all randomness.

    Returns:
        The transformed ``(image, mask)``, same dtypes and shapes as the inputs.

    Raises:
        ValueError: unknown operator, bad combination length, bad image/mask or ``s`` outside ``[0, 1]``.
    """
    ops = [OPERATORS[n] for n in parse_combination(combination)]
    _check_args(image, mask, s)
    for op in ops:
        image, mask = op.fn(image, mask, float(s), rng)
    return image, mask
