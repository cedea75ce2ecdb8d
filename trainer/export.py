"""Exporting a trained encoder as a self-describing folder (the shape MONAI users know from bundles).

``OUT/model.pt`` holds the encoder's state dict (tensors only, loadable with ``weights_only=True``),
``OUT/metadata.json`` what is needed to rebuild and use it (architecture, method, stage, input size and
normalisation, the store fingerprint, versions, the training data's licence), and ``OUT/README.md`` says the same in
prose. :func:`load_encoder` rebuilds the module from the folder alone. Every path in the metadata is relative to
the folder (the training run's own paths are reduced to their file names), and the store is named by fingerprint.

The folder also holds what other tools load without topo (:mod:`topo.trainer.export_timm`): ``visual_encoder.pt``
with timm's own keys and ``create_model`` arguments in ``metadata["timm"]`` (visual and joint stages),
``fused_traced.pt``, a TorchScript trace of the joint encoder with a tuple signature, and with ``safetensors``
installed a Hugging Face-style ``hf/`` folder (``config.json`` + ``model.safetensors``).
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
from topo.trainer.export_timm import timm_metadata, write_hf_folder, write_timm_weights, write_traced_fused
from topo.trainer.visual_views import MEAN, STD

FORMAT = "topo-encoder/1"
_RUN_PATHS = ("store", "out_dir", "init_visual", "init_topo")


def _portable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The training config without machine paths: each path reduced to its last component (a URL is kept)."""
    out = dict(config)
    for key in _RUN_PATHS:
        v = out.get(key)
        if isinstance(v, str) and v and "://" not in v:
            out[key] = Path(v).name
    return out


def _export_other_formats(enc: nn.Module, stage: str, g: dict[str, Any], size: int, out: Path) -> dict[str, Any]:
    """Write the timm weights, the traced fused model and the HF folder that fit the stage; their metadata."""
    extra: dict[str, Any] = {}
    visual = enc if stage == "visual" else getattr(enc, "visual", None)
    if visual is not None and hasattr(visual, "net"):
        write_timm_weights(visual, out)
        extra["timm"] = timm_metadata(visual, channels=int(g["channels"]), size=size)
        extra["timm"]["hf_folder"] = write_hf_folder(visual, extra["timm"], out) or "hf"
    if stage == "joint":
        extra["fused"] = write_traced_fused(enc, g, size, out)
    return extra


def export_encoder(checkpoint: str | Path, out_dir: str | Path, *, store_attrs: dict[str, Any] | None = None) -> Path:
    """Write ``model.pt``, ``metadata.json`` and ``README.md`` for the online encoder of ``checkpoint``."""
    from topo.store_schema.provenance import versions

    enc, cfg, ck = encoder_from_checkpoint(str(checkpoint))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(enc.state_dict(), out / "model.pt")
    g = ck["geometry"]
    size = int(cfg.image_size or g["height"])
    dataset = (store_attrs or {}).get("dataset", {})
    meta = {
        "format": FORMAT,
        "architecture": {"stage": cfg.stage, "backbone": cfg.backbone, "config": _portable_config(cfg.to_json())},
        "files": {"state_dict": "model.pt", "readme": "README.md"},
        "method": cfg.method,
        "feature_dim": int(getattr(enc, "feat_dim", 0)),
        "input": {
            "image": {
                "channels": g["channels"],
                "size": size,
                "mean": [MEAN] * int(g["channels"]),
                "std": [STD] * int(g["channels"]),
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
    meta.update(_export_other_formats(enc, cfg.stage, g, size, out))
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
        f"{g['k0']} H0, top-{g['k1']} H1). Features: {meta['feature_dim']} values.\n" + _readme_other_formats(meta)
    )
    return out


def _readme_other_formats(meta: dict[str, Any]) -> str:
    text = ""
    if "timm" in meta:
        text += "\n## With timm alone\n\n```python\nimport json, timm, torch\n" + meta["timm"]["recipe"] + "```\n"
        text += "\n`model(images)` takes `(B, C, H, W)` normalised images and returns the features.\n"
    if "fused" in meta:
        text += (
            '\n## The fused encoder with torch alone\n\n```python\nmodel = torch.jit.load("fused_traced.pt")\n'
            "features, gate_weights = model(image, pd_h0, n_h0, pd_h1, n_h1)\n```\n\nShapes: `metadata.json` `fused`.\n"
        )
    return text


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
