"""δ: how much an augmentation changes an image's topology (the relative bottleneck distance).

For an image x with ROI mask m and an augmentation T,

    δ_k(x, T) = d_B(PD_k(x), PD_k(T(x))) / scale(PD(x))     for k = 0 (H0) and k = 1 (H1),
    δ(x, T)   = max(δ_0, δ_1).

* **Diagrams.** PD(x) is the store's top-k diagram of x (``pd_h0``/``pd_h1``, the k0/k1 most persistent pairs
  of the cubical filtration restricted to the ROI; see :mod:`topo.pipeline.persistence`). PD(T(x)) is
  computed the same way (:func:`~topo.pipeline.persistence.topk_diagrams`) on the transformed image inside the
  transformed ROI: geometric operators move the mask with the image, the others keep it. With
  ``full_image=True`` (the paper's ablation) both diagrams are computed on the whole image, ignoring the mask.
* **Distance.** d_B is GUDHI's bottleneck distance with the L∞ ground metric, computed exactly (``e=0``;
  GUDHI's default ``e=None`` is a near-exact mode that returns 1e-308 instead of 0 for equal diagrams). An
  unmatched pair (b, d) goes to the diagonal at cost (d − b)/2.
* **Scale.** scale(PD(x)) = max death − min birth over all pairs of H0 ∪ H1 of x: the filtration range the
  diagram spans. H0 and H1 share it, so their δ are comparable. Because the essential H0 class is born at the
  ROI's minimum and (capped) dies at its maximum, the scale equals the length of the essential bar, i.e. the
  ROI's grey-level range. It is floored at 1/255 (one grey level) so that a constant ROI gives a finite δ.
* **Essential class.** The H0 class that never dies (and any class that only dies when the excluded background
  enters) is stored with death = the maximum filtration value inside the ROI, so every point is finite and is
  matched like any other. An augmentation that stretches or shifts the ROI's value range therefore moves the
  essential point, and d_B sees that change.
* **Top-k truncation.** Pairs beyond the top k are dropped from both diagrams. This changes d_B by at most
  half the sum of the persistences of the first dropped pair of each diagram (triangle inequality).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import gudhi
import numpy as np

from topo.pipeline.augment import Combination, apply, combination_name, parse_combination
from topo.pipeline.persistence import FiltrationSpec, topk_diagrams

SCALE_FLOOR = 1.0 / 255.0
METHOD_VERSION = 1  # bump when δ's computation changes, so old parts are not mixed with new ones

DELTA_DEFINITION = (
    "delta_k(x,T) = d_B(PD_k(x), PD_k(T(x))) / scale(PD(x)) for k in {H0, H1}; "
    "delta = max(delta_H0, delta_H1). PD: top-k cubical diagrams on the ROI (T(x) on the transformed ROI), "
    "infinite deaths capped at the ROI's maximum filtration value. "
    "d_B: GUDHI exact bottleneck distance (e=0, L-infinity ground metric)."
)
SCALE_DEFINITION = (
    "scale(PD(x)) = max death - min birth over H0 and H1 of x (= the length of the capped essential H0 bar, "
    "the ROI's filtration range), floored at 1/255."
)


class Delta(NamedTuple):
    """Relative bottleneck distances: per homology dimension and overall (their maximum)."""

    h0: float
    h1: float
    overall: float


Diagrams = tuple[np.ndarray, np.ndarray]
"""(H0, H1) diagrams, valid rows only: arrays of shape (n, 2) of (birth, death)."""


def diagram_scale(pd_x: Diagrams) -> float:
    """scale(PD(x)) = max death − min birth over H0 ∪ H1, floored at 1/255 (see the module docstring)."""
    pts = np.concatenate([np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in pd_x])
    if pts.size == 0:
        return SCALE_FLOOR
    return max(float(pts[:, 1].max() - pts[:, 0].min()), SCALE_FLOOR)


def _bottleneck(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    if a.shape == b.shape and np.array_equal(a, b):
        return 0.0  # equal diagrams (every exact homeomorphism): no matching needed, 0 is exact
    # e=0 is GUDHI's exact algorithm; the default e=None returns a denormal (1e-308) for equal diagrams.
    return float(gudhi.bottleneck_distance(a, b, 0.0))


def relative_bottleneck(pd_x: Diagrams, pd_tx: Diagrams) -> Delta:
    """δ between the diagrams of x and T(x), relative to scale(PD(x)).

    Args:
        pd_x: ``(h0, h1)`` of x, valid rows only.
        pd_tx: ``(h0, h1)`` of T(x), valid rows only.

    Returns:
        ``Delta(h0, h1, overall)`` with ``overall = max(h0, h1)``.
    """
    scale = diagram_scale(pd_x)
    d0 = _bottleneck(pd_x[0], pd_tx[0]) / scale
    d1 = _bottleneck(pd_x[1], pd_tx[1]) / scale
    return Delta(d0, d1, max(d0, d1))


def config_rng(seed: int, index: int, combination: Combination | str, s: float) -> np.random.Generator:
    """The generator of one (seed, sample, combination, s): independent of scheduling and of grid order."""
    words = [int(seed), int(index), _stable_word(combination_name(combination)), _stable_word(repr(float(s)))]
    return np.random.default_rng(np.random.SeedSequence(words))


def _stable_word(text: str) -> int:
    # Python's hash() is salted per process; a digest is the same on every worker and every run.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _valid(topk: Any, i: int) -> Diagrams:
    return topk.h0[i, : topk.n_h0[i]], topk.h1[i, : topk.n_h1[i]]


def _deltas(
    image: np.ndarray,
    mask: np.ndarray | None,
    pd_x: Diagrams | None,
    configs: Sequence[tuple[Combination, float, np.random.Generator]],
    spec: FiltrationSpec,
    full_image: bool,
) -> list[Delta]:
    """δ of one image for many (combination, s, rng): all T(x) diagrams in one GUDHI call."""
    if full_image or pd_x is None:
        pd_x = _valid(topk_diagrams([image], [None if full_image else mask], spec), 0)
    images, masks, ok = [], [], []
    for combo, s, rng in configs:
        t_img, t_mask = apply(combo, image, mask, s, rng)
        if full_image:
            t_mask = None
        good = t_mask is None or bool(np.any(t_mask))
        ok.append(good)
        if good:
            images.append(t_img)
            masks.append(t_mask)
    tk = topk_diagrams(images, masks, spec) if images else None
    out, j = [], 0
    for good in ok:
        if not good:  # the transform emptied the ROI: there is no diagram to compare
            out.append(Delta(math.nan, math.nan, math.nan))
            continue
        out.append(relative_bottleneck(pd_x, _valid(tk, j)))
        j += 1
    return out


def delta_for_image(
    image: np.ndarray,
    mask: np.ndarray | None,
    pd_x: Diagrams | None,
    combination: Combination | str,
    s: float,
    rng: np.random.Generator,
    spec: FiltrationSpec,
    full_image: bool = False,
) -> Delta:
    """δ(x, T) for one image and one (combination, s).

    Args:
        image: uint8 ``HxW`` or ``HxWxC``.
        mask: the stored ROI mask (uint8 ``HxW``), or ``None`` for the whole image.
        pd_x: the stored top-k ``(h0, h1)`` of x, valid rows only; ``None`` recomputes it.
        combination: operator names or a ``+``-joined string.
        s: intensity in ``[0, 1]``.
        rng: randomness of the augmentation.
        spec: the store's filtration.
        full_image: ignore the mask for both diagrams (PD(x) is recomputed on the whole image).

    Returns:
        The :class:`Delta` (NaNs if the transform left an empty ROI).
    """
    return _deltas(image, mask, pd_x, [(parse_combination(combination), float(s), rng)], spec, full_image)[0]
