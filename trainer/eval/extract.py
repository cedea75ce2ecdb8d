"""Feature extraction from a frozen encoder, for monitors and the linear-probe evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.eval.features import FeatureSet
from topo.trainer.visual_views import normalise

DIAGRAM_KEYS = ("pd_h0", "n_h0", "pd_h1", "n_h1")


def batch_view(
    batch: dict, stage: str, image_size: int | None, device: torch.device, full_image_spec: Any = None
) -> dict[str, torch.Tensor]:
    """The un-augmented view of a batch for an encoder of ``stage``: images and/or diagrams.

    Diagrams are the stored (ROI) ones, or, with ``full_image_spec`` (a filtration spec; runs trained with
    ``--topo-views full_image``), computed here on the whole image, as in training.
    """
    view: dict[str, torch.Tensor] = {}
    if stage in ("visual", "joint"):
        view["image"] = normalise(batch["image"].to(device), image_size)
    if stage in ("topo", "joint") and full_image_spec is not None:
        from topo.pipeline.persistence import topk_diagrams

        imgs = batch["image"].numpy().transpose(0, 2, 3, 1)
        t = topk_diagrams(list(imgs), [None] * len(imgs), full_image_spec)
        view.update(
            {
                "pd_h0": torch.from_numpy(t.h0).to(device),
                "n_h0": torch.from_numpy(t.n_h0.astype(np.int64)).to(device),
                "pd_h1": torch.from_numpy(t.h1).to(device),
                "n_h1": torch.from_numpy(t.n_h1.astype(np.int64)).to(device),
            }
        )
    elif stage in ("topo", "joint"):
        view.update({k: torch.as_tensor(batch[k]).to(device) for k in DIAGRAM_KEYS})
    return view


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    store: str,
    split: str,
    *,
    stage: str,
    image_size: int | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    limit: int | None = None,
    gate_weights: bool = False,
    full_image: bool = False,
) -> FeatureSet | tuple[FeatureSet, np.ndarray]:
    """Features of every usable sample of ``split`` (in index order), with the encoder in eval mode.

    Eval mode matters: BatchNorm must use its running statistics, not the probe batch's. ``full_image``: diagrams of
    the whole image, computed here (runs trained with ``--topo-views full_image``), instead of the stored ROI ones.
    """
    device = torch.device(device)
    spec = None
    if full_image and stage != "visual":
        from topo.store_schema import open_store
        from topo.store_schema.filtration import FiltrationSpec

        spec = FiltrationSpec.from_json(open_store(store).persistence_spec)
    was_training = encoder.training
    encoder.eval().to(device)
    keys = (
        ["index", "label", "sample_id"]
        + (["image"] if stage != "topo" or spec is not None else [])
        + (list(DIAGRAM_KEYS) if stage != "visual" else [])
    )
    ds = StoreDataset(
        store,
        splits=split,
        batch_size=batch_size,
        shuffle=False,
        drop_last=False,
        rank=0,
        world_size=1,
        keys=keys,
        collate=True,
    )
    xs, ys, ids, gates = [], [], [], []
    seen = 0
    for batch in make_loader(ds, num_workers=0):
        f = encoder(batch_view(batch, stage, image_size, device, spec))
        xs.append(f.float().cpu().numpy())
        ys.append(np.asarray(batch["label"]))
        ids += list(batch["sample_id"])
        last_gates = getattr(encoder, "last_gate_weights", None)  # set by a fused encoder's forward
        if gate_weights and last_gates is not None:
            gates.append(last_gates.float().cpu().numpy())
        seen += len(ys[-1])
        if limit is not None and seen >= limit:
            break
    encoder.train(was_training)
    fs = FeatureSet(
        split=split,
        x=np.concatenate(xs).astype(np.float32),
        y=np.concatenate(ys).astype(np.int64),
        sample_ids=np.asarray(ids, dtype=str),
    )
    if gate_weights:
        return fs, (np.concatenate(gates) if gates else np.zeros((len(fs.y), 0), np.float32))
    return fs
