"""The two views a method sees at each step, per stage, and the joint stage's view recipes.

* ``visual`` (stage 1): the base method's own weak/strong pair (:data:`~topo.trainer.visual_views.VIEW1` /
  ``VIEW2``), batched on the device.
* ``topo`` (stage 2): the diagrams of the topology-aware views (:class:`~topo.trainer.topo_views.TopoViews`).
* ``joint`` (stage 3), by ``stage3_views``:

  - ``topo`` (default, the paper's): the visual encoder sees the topology-aware view images themselves
    (normalised, no further augmentation) and the topology encoder the diagram of exactly that image. With
    ``--pairing standard`` (Table 4 row (a)) both encoders see the base method's own weak/strong visual pair and the
    diagrams are computed here, online, of the augmented view the visual encoder sees (whole view: a random
    resized crop has no ROI mask to follow).
  - ``standard+topo`` (ablation, the older behaviour): the standard visual augmentation is stacked on top of the
    topology-aware views, so the image the visual encoder sees no longer matches the diagram.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from topo.pipeline.persistence import FiltrationSpec, topk_diagrams
from topo.trainer.config import TrainConfig
from topo.trainer.eval.extract import DIAGRAM_KEYS
from topo.trainer.visual_views import MEAN, STD, VIEW1, VIEW2, augment, normalise, step_generator

STAGE3_VIEWS = ("topo", "standard+topo")


def denormalise(x: torch.Tensor) -> np.ndarray:
    """An encoder input ``(B, C, H, W)`` back to grey levels 0–255 ``(B, H, W, C)`` float64, for diagrams."""
    return (x.detach().float().cpu().numpy().transpose(0, 2, 3, 1) * STD + MEAN) * 255.0


def diagrams_of_views(x: torch.Tensor, spec: FiltrationSpec, device: torch.device) -> dict[str, torch.Tensor]:
    """Top-k diagrams (whole view) of the encoder inputs ``x``, exactly as the store computes them."""
    imgs = denormalise(x)
    t = topk_diagrams(list(imgs), [None] * len(imgs), spec)
    return {
        "pd_h0": torch.from_numpy(t.h0).to(device),
        "n_h0": torch.from_numpy(t.n_h0.astype(np.int64)).to(device),
        "pd_h1": torch.from_numpy(t.h1).to(device),
        "n_h1": torch.from_numpy(t.n_h1.astype(np.int64)).to(device),
    }


def make_views(
    batch: dict[str, Any],
    cfg: TrainConfig,
    step: int,
    size: int,
    device: torch.device,
    spec: FiltrationSpec | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The two views of one step (see the module docstring). ``spec`` is needed for the joint standard pair."""
    views: list[dict[str, torch.Tensor]] = []
    paper_joint = cfg.stage == "joint" and cfg.stage3_views == "topo"
    for k, recipe in enumerate((VIEW1, VIEW2)):
        v: dict[str, torch.Tensor] = {}
        g = step_generator(cfg.seed, step, k, device)
        if paper_joint and cfg.pairing == "standard":
            if spec is None:
                raise ValueError("the joint stage's standard pair needs the store's filtration spec")
            v["image"] = augment(batch["image"].to(device, non_blocking=True), recipe, size=size, generator=g)
            v.update(diagrams_of_views(v["image"], spec, device))
        elif paper_joint:
            tv = batch["views"][k]
            v.update({key: torch.as_tensor(tv[key]).to(device, non_blocking=True) for key in DIAGRAM_KEYS})
            # The diagram is of the store-resolution view; resizing (--image-size) would change the image only.
            v["image"] = normalise(tv["image"].to(device, non_blocking=True), size)
        else:
            if cfg.stage in ("topo", "joint"):
                tv = batch["views"][k]
                v.update({key: torch.as_tensor(tv[key]).to(device, non_blocking=True) for key in DIAGRAM_KEYS})
                source = tv["image"]
            else:
                source = batch["image"]
            if cfg.stage in ("visual", "joint"):
                v["image"] = augment(source.to(device, non_blocking=True), recipe, size=size, generator=g)
        views.append(v)
    return views[0], views[1]


_PAIRING_TEXT = {
    "weak+strong": "one topology-weak and one topology-strong calibrated view (Table 4 (c), the paper's)",
    "weak+weak": "two topology-weak calibrated views (Table 4 ablation)",
    "strong+strong": "two topology-strong calibrated views (Table 4 ablation)",
}
_DIAGRAM_TEXT = {
    "online": "the diagram of each view's ROI, computed online",
    "full_image": "the diagram of each whole view, computed online at train and eval (Table 4 (b))",
    "precomputed": "the stored diagram of the un-augmented image (ablation)",
}


def view_definition(cfg: TrainConfig) -> str:
    """One sentence saying what this run's two views are (printed in the report beside its row)."""
    if cfg.stage == "visual":
        return "the base method's own weak/strong visual pair (random resized crop, flip, jitter, blur, solarise)"
    if cfg.pairing == "standard" and (cfg.stage == "topo" or cfg.stage3_views == "standard+topo"):
        pair = "uncalibrated topology-aware views (combinations and intensities drawn uniformly)"
    elif cfg.pairing == "standard":
        return (
            "Table 4 (a): the base method's own weak/strong visual pair for both encoders; the diagram of each "
            "whole augmented view, computed online"
        )
    else:
        each = (
            "each operator's intensity from its own calibrated range"
            if cfg.intensities == "per-op"
            else ("one intensity for all operators of a combination (ablation)")
        )
        pair = f"{_PAIRING_TEXT[cfg.pairing]}, {each}"
    text = f"{pair}; {_DIAGRAM_TEXT[cfg.topo_views]}"
    if cfg.stage == "joint" and cfg.stage3_views == "standard+topo":
        text += "; standard visual augmentation stacked on the views for the visual encoder (ablation)"
    elif cfg.stage == "joint":
        text += "; the visual encoder sees the same view images, unaugmented further"
    return text
