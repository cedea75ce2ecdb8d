"""Exporting a trained encoder as a self-describing folder (the shape MONAI users know from bundles).

``OUT/model.pt`` holds the encoder's state dict (tensors only, loadable with ``weights_only=True``),
``OUT/metadata.json`` what is needed to rebuild and use it (architecture, method, stage, input size and
normalisation, the store fingerprint, versions, the training data's licence), and ``OUT/README.md`` says the same in
prose. :func:`load_encoder` rebuilds the module from the folder alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from topo.store_schema import Geometry
from topo.trainer.build import build_backbone, encoder_from_checkpoint
from topo.trainer.config import TrainConfig
from topo.trainer.visual_views import MEAN, STD

FORMAT = "topo-encoder/1"


def export_encoder(checkpoint: str | Path, out_dir: str | Path, *, store_attrs: dict[str, Any] | None = None) -> Path:
    """Write ``model.pt``, ``metadata.json`` and ``README.md`` for the online encoder of ``checkpoint``."""
    from topo.store_schema.provenance import versions

    enc, cfg, ck = encoder_from_checkpoint(str(checkpoint))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(enc.state_dict(), out / "model.pt")
    g = ck["geometry"]
    dataset = (store_attrs or {}).get("dataset", {})
    meta = {
        "format": FORMAT,
        "architecture": {"stage": cfg.stage, "backbone": cfg.backbone, "config": cfg.to_json()},
        "method": cfg.method,
        "feature_dim": int(getattr(enc, "feat_dim", 0)),
        "input": {
            "image": {
                "channels": g["channels"],
                "size": cfg.image_size or g["height"],
                "dtype": "uint8 → float",
                "normalisation": f"x / 255, then (x - {MEAN}) / {STD}",
            }
            if cfg.stage != "topo"
            else None,
            "diagrams": {"k0": g["k0"], "k1": g["k1"], "filtration": ck["store"]["filtration"]}
            if cfg.stage != "visual"
            else None,
        },
        "geometry": g,
        "store": ck["store"],
        "class_names": ck.get("class_names"),
        "training_data": {
            "name": dataset.get("name"),
            "license": dataset.get("license"),
            "non_commercial": dataset.get("non_commercial"),
        },
        "step": ck["step"],
        "versions": versions(),
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2))
    lic = meta["training_data"]["license"] or "unknown"
    (out / "README.md").write_text(
        f"# topo encoder: {cfg.method} / {cfg.stage} / {cfg.backbone}\n\n"
        f"Trained with topo on `{meta['training_data']['name']}` (licence of the training data: {lic}) for "
        f"{ck['step']} steps; store fingerprint `{ck['store']['fingerprint']}`.\n\n"
        '```python\nimport topo\nencoder = topo.load_encoder("' + out.name + '")\n'
        "features = encoder(view)  # view: {'image': (B,C,H,W) normalised} and/or diagrams, see metadata.json\n"
        "```\n\n"
        f"Images: uint8 → `x / 255`, then `(x - {MEAN}) / {STD}`; diagrams as stored by topo (top-"
        f"{g['k0']} H0, top-{g['k1']} H1). Features: {meta['feature_dim']} values.\n"
    )
    return out


def load_encoder(path: str | Path, *, device: str = "cpu") -> nn.Module:
    """Rebuild an exported encoder from its folder (eval mode)."""
    root = Path(path)
    meta_file = root / "metadata.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{root} is not an exported topo encoder (no metadata.json)")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{root}: format {meta.get('format')!r}, this topo reads {FORMAT!r}")
    cfg = TrainConfig.from_json(meta["architecture"]["config"])
    enc = build_backbone(cfg, Geometry.from_json(meta["geometry"]), load_inits=False)
    enc.load_state_dict(torch.load(root / "model.pt", map_location=device, weights_only=True))
    return enc.to(device).eval()
