"""Topology-aware views: calibrated augmentations and the diagrams of the augmented images.

The operators are the pipeline's (:mod:`topo.pipeline.augment`, re-exported here: one definition). For each view
the sampler picks a combination whose calibrated range exists for the view's strength and draws **each operator's
intensity from its own calibrated range** (the range of that operator calibrated alone, for the same strength;
the combination's range only for an operator that was not calibrated alone). ``intensities="shared"`` keeps the
older rule (one intensity, from the combination's range, for all its operators) as an ablation. No δ is computed
at training time. The transform applies the draw to the image and its ROI mask and, in ``online`` mode, recomputes
the top-k diagrams of the transformed ROI with GUDHI's 2-D algorithm, in the DataLoader worker: the diagram is that
of exactly the view image returned beside it. ``precomputed`` keeps the stored diagram of the un-augmented image
(a cheap ablation); ``full_image`` computes diagrams on the whole view instead of the ROI (the paper's Table 4 (b)).

Pairings: ``weak+strong`` (the paper's best, default), ``weak+weak``, ``strong+strong``, and ``standard``, where
combinations and intensities are drawn uniformly without calibration (the topology branch's input for the paper's
"standard weak+strong" row; in the joint stage the visual encoder then sees the base method's own visual pair).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from topo.pipeline import augment as _pipeline_augment
from topo.pipeline.augment import DEFAULT_COMBINATIONS, OPERATORS, apply, parse_combination
from topo.pipeline.persistence import FiltrationSpec, topk_diagrams

__all__ = [
    "INTENSITIES",
    "OPERATORS",
    "PAIRINGS",
    "TOPO_VIEW_MODES",
    "TopoViews",
    "apply",
    "apply_draw",
    "operators_module",
]

PAIRINGS = ("weak+strong", "weak+weak", "strong+strong", "standard")
TOPO_VIEW_MODES = ("online", "precomputed", "full_image")
INTENSITIES = ("per-op", "shared")
_DIHEDRAL = ("hflip", "vflip", "rot90")
operators_module = _pipeline_augment


class NoCalibratedBandError(ValueError):
    """The store's calibration has no range for a strength the pairing needs (or no calibration was given)."""


@dataclass(frozen=True)
class Draw:
    """One view's augmentation: which combination, at which intensity per operator (kept for tests and logging)."""

    combination: str
    strength: str
    s: tuple[float, ...]  # one intensity per operator of the combination, in order


class TopoViews:
    """A dict → dict transform (runs in DataLoader workers) adding ``sample["views"] = [view1, view2]``.

    Each view is ``{"image": (C,H,W) uint8, "pd_h0": (k0,2), "n_h0", "pd_h1": (k1,2), "n_h1"}``.

    Args:
        ranges: calibrated ranges, ``{combination: {"weak": (lo, hi) | None, "strong": (lo, hi) | None}}``
            (see :func:`topo.pipeline.calibrate.load_ranges`).
        spec: the store's filtration spec (diagrams are computed exactly as the store's).
        pairing: one of :data:`PAIRINGS`.
        mode: one of :data:`TOPO_VIEW_MODES`.
        seed: randomness is a function of ``(seed, epoch, sample index, view)`` only.
        dihedral: also apply a random flip/90° rotation (δ = 0) to each view.
        intensities: ``per-op`` (each operator from its own calibrated range) or ``shared`` (one for all).

    Raises:
        ValueError: an unknown pairing or mode, or no calibrated combination for a strength the pairing needs.
    """

    def __init__(
        self,
        ranges: Mapping[str, Mapping[str, Any]],
        spec: FiltrationSpec,
        *,
        pairing: str = "weak+strong",
        mode: str = "online",
        seed: int = 0,
        dihedral: bool = True,
        intensities: str = "per-op",
    ) -> None:
        if pairing not in PAIRINGS:
            raise ValueError(f"unknown pairing {pairing!r}; valid: {', '.join(PAIRINGS)}")
        if mode not in TOPO_VIEW_MODES:
            raise ValueError(f"unknown topology view mode {mode!r}; valid: {', '.join(TOPO_VIEW_MODES)}")
        if intensities not in INTENSITIES:
            raise ValueError(f"unknown intensities {intensities!r}; valid: {', '.join(INTENSITIES)}")
        self.spec, self.pairing, self.mode, self.seed, self.dihedral = spec, pairing, mode, seed, dihedral
        self.intensities = intensities
        # Each operator's own calibrated range per strength: the range of the operator calibrated alone.
        self.op_ranges: dict[str, dict[str, tuple[float, float]]] = {"weak": {}, "strong": {}}
        self.epoch = 0
        self.choices: dict[str, list[tuple[str, float, float]]] = {"weak": [], "strong": []}
        if pairing == "standard":
            names = ["+".join(c) for c in DEFAULT_COMBINATIONS if c[0] not in _DIHEDRAL]
            self.choices = {"weak": [(n, 0.0, 1.0) for n in names], "strong": [(n, 0.0, 1.0) for n in names]}
        else:
            for name, r in ranges.items():
                ops = parse_combination(name)
                for strength in ("weak", "strong"):
                    rng = r.get(strength)
                    if rng is not None:
                        self.choices[strength].append((name, float(rng[0]), float(rng[1])))
                        if len(ops) == 1:
                            self.op_ranges[strength][ops[0]] = (float(rng[0]), float(rng[1]))
            for strength in set(pairing.split("+")):
                if not self.choices[strength]:
                    # No command here: the store is not known; the trainer adds the exact calibrate-aug command.
                    raise NoCalibratedBandError(
                        f"no calibrated combination reaches the topo-{strength} band (calibrate-aug found none in "
                        "its grid); use --pairing standard"
                    )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def strengths(self) -> tuple[str, str]:
        if self.pairing == "standard":
            return ("weak", "strong")
        a, b = self.pairing.split("+")
        return (a, b)

    def draw(self, rng: np.random.Generator, strength: str) -> Draw:
        name, lo, hi = self.choices[strength][int(rng.integers(len(self.choices[strength])))]
        ops = parse_combination(name)
        if self.intensities == "shared":
            s = float(rng.uniform(lo, hi))
            return Draw(name, strength, tuple(s for _ in ops))
        own = self.op_ranges[strength]
        return Draw(name, strength, tuple(float(rng.uniform(*own.get(op, (lo, hi)))) for op in ops))

    def intensity_range(self, op: str, strength: str, combination: str) -> tuple[float, float]:
        """The range ``op`` draws from inside ``combination`` at ``strength`` (what :meth:`draw` uses)."""
        lo, hi = next((lo, hi) for n, lo, hi in self.choices[strength] if n == combination)
        if self.intensities == "shared":
            return (lo, hi)
        return self.op_ranges[strength].get(op, (lo, hi))

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        image = sample["image"].numpy().transpose(1, 2, 0)
        mask = sample["roi_mask"].numpy()
        mask = mask[0] if mask.ndim == 3 else mask  # samples carry it 1×H×W; the operators take H×W
        views = []
        for v, strength in enumerate(self.strengths()):
            rng = np.random.default_rng([self.seed, self.epoch, int(sample["index"]), v])
            d = self.draw(rng, strength)
            img, m = apply_draw(d, image, mask, rng)
            if self.dihedral:
                img, m = apply(_DIHEDRAL[int(rng.integers(3))], img, m, float(rng.uniform()), rng)
            view: dict[str, Any] = {
                "image": torch.from_numpy(np.ascontiguousarray(img.reshape(image.shape).transpose(2, 0, 1))),
                "roi_mask": torch.from_numpy(np.ascontiguousarray(m)),
            }
            if self.mode == "precomputed":
                view.update({k: sample[k] for k in ("pd_h0", "n_h0", "pd_h1", "n_h1")})
            else:
                t = topk_diagrams([img], [None if self.mode == "full_image" else m], self.spec)
                view.update(
                    {
                        "pd_h0": torch.from_numpy(t.h0[0]),
                        "n_h0": int(t.n_h0[0]),
                        "pd_h1": torch.from_numpy(t.h1[0]),
                        "n_h1": int(t.n_h1[0]),
                    }
                )
            views.append(view)
        return {**sample, "views": views}


def apply_draw(d: Draw, image: np.ndarray, mask: Any, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
    """Apply the operators of ``d.combination`` in order, each with its own intensity from ``d.s``."""
    for op, s in zip(parse_combination(d.combination), d.s, strict=True):
        image, mask = apply(op, image, mask, s, rng)
    return image, mask
