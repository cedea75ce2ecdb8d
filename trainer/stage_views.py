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
