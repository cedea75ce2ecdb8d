"""The parts of an export that other tools load without topo: timm weights, a traced fused model, a HF folder.

**timm.** ``visual_encoder.pt`` is the visual backbone's state dict with timm's own keys, and ``metadata.json``
``timm`` holds the ``create_model`` arguments, so a timm user needs three lines (what :data:`TIMM_RECIPE` prints)::

    kw = json.load(open("metadata.json"))["timm"]
    model = timm.create_model(kw["model_name"], pretrained=False, **kw["kwargs"])
    model.load_state_dict(torch.load("visual_encoder.pt", weights_only=True), strict=True)

``kwargs`` carries ``num_classes=0``, ``in_chans`` and a ``pretrained_cfg_overlay`` with the normalisation the
encoder was trained with (``x / 255`` then ``(x - 0.5) / 0.25`` on every channel, not ImageNet's statistics), the
store's input size and channel count, so ``timm.data.resolve_data_config(model=model)`` builds the right
preprocessing. A model trained with topo's small-input stem (a 3×3/1 ``conv1`` and no max-pool, for images of
64 px and less) has no ``create_model`` argument in timm: ``metadata["timm"]["stem"]`` then says so and
:data:`SMALL_STEM_RECIPE` gives the two extra lines that rebuild it before ``load_state_dict``.

**Fused model.** The joint encoder takes a dict; ``fused_traced.pt`` is a TorchScript trace of it with the tuple
signature ``(image, pd_h0, n_h0, pd_h1, n_h1) -> (features, gate_weights)`` (shapes in ``metadata["fused"]``),
loadable with ``torch.jit.load`` alone, and ``fused.pt2`` the same signature as a ``torch.export`` program with a
dynamic batch size (``torch.export.load("fused.pt2").module()``; TorchScript is deprecated in recent torch). The
trace records one control flow: the one of the example batch, which is
fixed by the store's ``k0``/``k1`` and does not depend on the values, so it holds for any batch of the same
geometry (the batch size may differ).

**Hugging Face folder.** With ``safetensors`` installed (and a standard stem), ``hf/config.json`` +
``hf/model.safetensors`` are timm's Hub layout: ``timm.create_model("local-dir:hf", pretrained=True)``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from topo.trainer.visual_views import MEAN, STD

TIMM_RECIPE = (
    'kw = json.load(open("metadata.json"))["timm"]\n'
    'model = timm.create_model(kw["model_name"], pretrained=False, **kw["kwargs"])\n'
    'model.load_state_dict(torch.load("visual_encoder.pt", weights_only=True), strict=True)\n'
)
SMALL_STEM_RECIPE = (
    "model.conv1 = torch.nn.Conv2d(model.conv1.in_channels, model.conv1.out_channels, 3, 1, 1, bias=False)\n"
    "model.maxpool = torch.nn.Identity()\n"
)


def _recipe(small_input: bool) -> str:
    """The timm load recipe; with the small-input stem its two extra lines go before ``load_state_dict``."""
    lines = TIMM_RECIPE.splitlines(keepends=True)
    return TIMM_RECIPE if not small_input else "".join([*lines[:2], SMALL_STEM_RECIPE, *lines[2:]])


def timm_metadata(visual: Any, *, channels: int, size: int) -> dict[str, Any]:
    """The ``create_model`` arguments and data config of a :class:`~topo.trainer.models.visual.VisualEncoder`."""
    small = bool(getattr(visual, "small_input", False))
    overlay = {
        "mean": [MEAN] * channels,
        "std": [STD] * channels,
        "input_size": [channels, size, size],
        "num_classes": 0,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "center",
    }
    return {
        "model_name": visual.name,
        "kwargs": {"num_classes": 0, "in_chans": channels, "pretrained_cfg_overlay": overlay},
        "weights": "visual_encoder.pt",
        "stem": "small_input: conv1 3x3 stride 1, maxpool Identity (apply before load_state_dict)"
        if small
        else "timm default",
        "recipe": _recipe(small),
        "input": "uint8 image / 255, then (x - mean) / std per channel, C×H×W at input_size",
    }


def write_timm_weights(visual: Any, out: Path) -> None:
    """``visual_encoder.pt``: the timm model's own state dict (no ``net.`` prefix)."""
    torch.save({k: v.detach().clone() for k, v in visual.net.state_dict().items()}, out / "visual_encoder.pt")


def write_hf_folder(visual: Any, meta: dict[str, Any], out: Path) -> str | None:
    """``hf/config.json`` + ``hf/model.safetensors`` in timm's Hub layout, or why not (returned as text)."""
    if getattr(visual, "small_input", False):
        return "not written: timm cannot rebuild the small-input stem from config.json"
    try:
        from safetensors.torch import save_file
    except ImportError:
        return "not written: safetensors is not installed"
    hf = out / "hf"
    hf.mkdir(exist_ok=True)
    kwargs = meta["kwargs"]
    config = {
        "architecture": meta["model_name"],
        "num_classes": 0,
        "num_features": int(visual.feat_dim),
        "model_args": {"in_chans": kwargs["in_chans"]},
        "pretrained_cfg": kwargs["pretrained_cfg_overlay"],
    }
    (hf / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.detach().contiguous() for k, v in visual.net.state_dict().items()}, str(hf / "model.safetensors"))
    return None


class TupleFused(nn.Module):
    """The fused encoder behind a tuple signature: ``(image, pd_h0, n_h0, pd_h1, n_h1) -> (features, gates)``."""

    visual: nn.Module
    topology: nn.Module
    fusion: nn.Module

    def __init__(self, fused: Any) -> None:  # a FusedEncoder
        super().__init__()
        self.visual, self.topology, self.fusion = fused.visual, fused.topology, fused.fusion

    def forward(self, image: Tensor, pd_h0: Tensor, n_h0: Tensor, pd_h1: Tensor, n_h1: Tensor) -> tuple[Tensor, Tensor]:
        view = {"image": image, "pd_h0": pd_h0, "n_h0": n_h0, "pd_h1": pd_h1, "n_h1": n_h1}
        out = self.fusion(self.visual(view), self.topology(view))
        return out.features, out.gate_weights


def example_view(geometry: dict[str, Any], size: int, batch: int = 2) -> dict[str, Tensor]:
    """A valid input of the store's geometry (every diagram row in use) to trace with."""
    g = torch.Generator().manual_seed(0)
    k0, k1 = int(geometry["k0"]), int(geometry["k1"])
    return {
        "image": torch.randn(batch, int(geometry["channels"]), size, size, generator=g),
        "pd_h0": torch.rand(batch, k0, 2, generator=g).sort(dim=-1).values,
        "n_h0": torch.full((batch,), k0, dtype=torch.int64),
        "pd_h1": torch.rand(batch, k1, 2, generator=g).sort(dim=-1).values,
        "n_h1": torch.full((batch,), k1, dtype=torch.int64),
    }


def write_traced_fused(fused: Any, geometry: dict[str, Any], size: int, out: Path) -> dict[str, Any]:
    """``fused_traced.pt``: a TorchScript trace of :class:`TupleFused`; returns its signature for the metadata."""
    wrapped = TupleFused(fused).eval()
    ex = example_view(geometry, size)
    args = (ex["image"], ex["pd_h0"], ex["n_h0"], ex["pd_h1"], ex["n_h1"])
    # The tracer warns about every shape check it freezes; they depend on the geometry only, which is fixed.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(wrapped, args, check_trace=True)
    traced.save(str(out / "fused_traced.pt"))
    exported = _write_exported_program(wrapped, args, out)
    c, k0, k1 = int(geometry["channels"]), int(geometry["k0"]), int(geometry["k1"])
    return {
        "file": "fused_traced.pt",
        "load": 'torch.jit.load("fused_traced.pt")',
        "inputs": {
            "image": f"(B, {c}, {size}, {size}) float, normalised as metadata input.image",
            "pd_h0": f"(B, {k0}, 2) float (birth, death)",
            "n_h0": "(B,) int64, valid H0 rows",
            "pd_h1": f"(B, {k1}, 2) float",
            "n_h1": "(B,) int64, valid H1 rows",
        },
        "outputs": {"features": "(B, feature_dim)", "gate_weights": f"(B, {len(fused.fusion.experts)}) experts"},
        "experts": list(fused.fusion.experts),
        "exported_program": exported,
    }


def _write_exported_program(wrapped: nn.Module, args: tuple[Tensor, ...], out: Path) -> str:
    """``fused.pt2``: the same signature as a ``torch.export`` program with a dynamic batch size.

    TorchScript is deprecated in recent torch; ``torch.export`` is its successor. Returns the file name, or why
    it was not written (a backbone ``torch.export`` cannot capture), so the metadata says which files exist.
    """
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(wrapped, args, dynamic_shapes=tuple({0: batch} for _ in args))
        torch.export.save(program, str(out / "fused.pt2"))
    except Exception as e:  # any capture failure leaves the TorchScript trace as the export
        return f"not written: torch.export failed ({type(e).__name__}: {str(e)[:200]})"
    return "fused.pt2"
