"""Topology-aware views: calibrated augmentations and the diagrams of the augmented images.

The operators are the pipeline's (:mod:`topo.pipeline.augment`, re-exported here: one definition). For each view
the sampler picks a combination whose calibrated range exists for the view's strength, draws the intensity
uniformly from that range (no δ is computed at training time), applies it to the image and its ROI mask, and, in
``online`` mode, recomputes the top-k diagrams of the transformed ROI with GUDHI's 2-D algorithm, in the
DataLoader worker. ``precomputed`` keeps the stored diagram of the un-augmented image (a cheap ablation);
``full_image`` computes diagrams on the whole image instead of the ROI (the paper's Table 4 ablation).

Pairings: ``weak+strong`` (the paper's best, default), ``weak+weak``, ``strong+strong``, and ``standard``, where
combinations and intensities are drawn uniformly without calibration (the paper's "standard weak+strong" row).
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

__all__ = ["OPERATORS", "PAIRINGS", "TOPO_VIEW_MODES", "TopoViews", "apply", "operators_module"]

PAIRINGS = ("weak+strong", "weak+weak", "strong+strong", "standard")
TOPO_VIEW_MODES = ("online", "precomputed", "full_image")
_DIHEDRAL = ("hflip", "vflip", "rot90")
operators_module = _pipeline_augment


@dataclass(frozen=True)
class Draw:
    """One view's augmentation: which combination at which intensity (kept for tests and logging)."""

    combination: str
    strength: str
    s: float


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
    ) -> None:
        if pairing not in PAIRINGS:
            raise ValueError(f"unknown pairing {pairing!r}; valid: {', '.join(PAIRINGS)}")
        if mode not in TOPO_VIEW_MODES:
            raise ValueError(f"unknown topology view mode {mode!r}; valid: {', '.join(TOPO_VIEW_MODES)}")
        self.spec, self.pairing, self.mode, self.seed, self.dihedral = spec, pairing, mode, seed, dihedral
        self.epoch = 0
        self.choices: dict[str, list[tuple[str, float, float]]] = {"weak": [], "strong": []}
        if pairing == "standard":
            names = ["+".join(c) for c in DEFAULT_COMBINATIONS if c[0] not in _DIHEDRAL]
            self.choices = {"weak": [(n, 0.0, 1.0) for n in names], "strong": [(n, 0.0, 1.0) for n in names]}
        else:
            for name, r in ranges.items():
                parse_combination(name)
                for strength in ("weak", "strong"):
                    rng = r.get(strength)
                    if rng is not None:
                        self.choices[strength].append((name, float(rng[0]), float(rng[1])))
            for strength in set(pairing.split("+")):
                if not self.choices[strength]:
                    raise ValueError(
                        f"no calibrated combination reaches the topo-{strength} band; run `topo calibrate-aug` "
                        "on this store (or widen its grid), or use --pairing standard"
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
        return Draw(name, strength, float(rng.uniform(lo, hi)))

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        image = sample["image"].numpy().transpose(1, 2, 0)
        mask = sample["roi_mask"].numpy()
        mask = mask[0] if mask.ndim == 3 else mask  # samples carry it 1×H×W; the operators take H×W
        views = []
        for v, strength in enumerate(self.strengths()):
            rng = np.random.default_rng([self.seed, self.epoch, int(sample["index"]), v])
            d = self.draw(rng, strength)
            img, m = apply(d.combination, image, mask, d.s, rng)
            if self.dihedral:
                img, m = apply(_DIHEDRAL[int(rng.integers(3))], img, m, float(rng.uniform()), rng)
            view: dict[str, Any] = {
                "image": torch.from_numpy(np.ascontiguousarray(img.reshape(image.shape).transpose(2, 0, 1)))
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
