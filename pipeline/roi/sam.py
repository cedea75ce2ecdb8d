"""Segment Anything (SAM) as an ROI backend.

Two prompt modes:

* ``box`` (cheap): each image is encoded once (in batches) and prompted with one box covering the field of view
  (the image without scanner frames or a dermoscope's vignette) inset by ``box_margin`` of its size, plus a
  positive point at its centre; the highest-scoring of SAM's three masks is kept.
* ``auto`` (the paper): :class:`segment_anything.SamAutomaticMaskGenerator` over a point grid; the kept masks
  that are not background are united. A mask counts as background when it covers more than ``max_area`` of the
  image or more than ``max_border`` of the image border.

Weights are loaded with ``torch.load(..., weights_only=True)``. Official checkpoints are recognised by file name
and their md5 checked. On CUDA the image encoder runs under bf16 autocast.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topo.pipeline.roi.base import DEFAULT_MIN_AREA, RoiBackend, grey_uint8
from topo.pipeline.roi.field_of_view import field_of_view

SAM_CHECKPOINT_ENV = "TOPO_SAM_CHECKPOINT"

OFFICIAL_CHECKPOINTS: dict[str, tuple[str, str]] = {
    "sam_vit_h_4b8939.pth": ("vit_h", "4b8939a88964f0f4ff5f5b2642c598a6"),
    "sam_vit_l_0b3195.pth": ("vit_l", "0b3195507c641ddb6910d2bb5adee89c"),
    "sam_vit_b_01ec64.pth": ("vit_b", "01ec64d29a2fca3f0661936605ae66f5"),
}
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/segment_anything/{name}"


def _builders() -> dict[str, Any]:
    from segment_anything.build_sam import _build_sam, sam_model_registry

    return {
        "vit_h": sam_model_registry["vit_h"],
        "vit_l": sam_model_registry["vit_l"],
        "vit_b": sam_model_registry["vit_b"],
        # A 4.8 M-parameter SAM that runs every real code path on a CPU in tests; random weights only.
        "vit_tiny_test": partial(
            _build_sam, encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=1, encoder_global_attn_indexes=[0]
        ),
    }


SAM_MODELS = ("vit_h", "vit_l", "vit_b", "vit_tiny_test")


def save_tiny_test_checkpoint(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write a seeded random-weight ``vit_tiny_test`` SAM state dict (for tests and CPU benchmarks of the code path)."""
    torch.manual_seed(seed)
    out = Path(path)
    torch.save(_builders()["vit_tiny_test"](checkpoint=None).state_dict(), out)
    return out


def file_digests(path: Path) -> dict[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            md5.update(block)
            sha.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def resolve_checkpoint(model: str, checkpoint: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Find, hash and (for official names) verify a SAM checkpoint; the result is recorded in the store."""
    if model not in SAM_MODELS:
        raise ValueError(f"unknown SAM model {model!r}; valid: {', '.join(SAM_MODELS)}")
    path = checkpoint or os.environ.get(SAM_CHECKPOINT_ENV)
    if not path:
        raise FileNotFoundError(
            f"SAM needs a checkpoint: pass --sam-checkpoint or set {SAM_CHECKPOINT_ENV}. "
            "`topo fetch-sam --model vit_h` downloads the official one."
        )
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"SAM checkpoint not found: {p}")
    digests = file_digests(p)
    official = OFFICIAL_CHECKPOINTS.get(p.name)
    if official:
        off_model, off_md5 = official
        if off_model != model:
            raise ValueError(f"{p.name} is the official {off_model} checkpoint, but --sam-model is {model}")
        if digests["md5"] != off_md5:
            raise ValueError(f"{p} has md5 {digests['md5']}, the official file has {off_md5}: corrupt or altered")
    return {"path": str(p.resolve()), "file": p.name, "official": bool(official), **digests}


def fov_box(image: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)``: the field of view's bounding box inset by ``margin`` of its width and height."""
    fov = field_of_view(grey_uint8(image))
    ys, xs = np.flatnonzero(fov.any(axis=1)), np.flatnonzero(fov.any(axis=0))
    y0, y1, x0, x1 = float(ys[0]), float(ys[-1]), float(xs[0]), float(xs[-1])
    mh, mw = margin * (y1 - y0 + 1), margin * (x1 - x0 + 1)
    return x0 + mw, y0 + mh, x1 - mw, y1 - mh


class SamRoi(RoiBackend):
    """SAM masks. Construct it where it runs (a Ray actor): it loads the model in the constructor."""

    name = "sam"

    def __init__(
        self,
        *,
        model: str = "vit_h",
        checkpoint: str | os.PathLike[str] | None = None,
        mode: str = "box",
        device: str | None = None,
        batch_size: int = 8,
        box_margin: float = 0.05,
        points_per_side: int = 32,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        max_area: float = 0.95,
        max_border: float = 0.5,
        min_area: float = DEFAULT_MIN_AREA,
    ) -> None:
        super().__init__(min_area=min_area)
        if mode not in ("box", "auto"):
            raise ValueError(f"SAM mode must be 'box' or 'auto', got {mode!r}")
        self.model_name, self.mode, self.batch_size = model, mode, batch_size
        self.box_margin, self.max_area, self.max_border = box_margin, max_area, max_border
        self.auto_params = {
            "points_per_side": points_per_side,
            "pred_iou_thresh": pred_iou_thresh,
            "stability_score_thresh": stability_score_thresh,
        }
        self.checkpoint = resolve_checkpoint(model, checkpoint)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        sam = _builders()[model](checkpoint=None)
        state = torch.load(self.checkpoint["path"], map_location="cpu", weights_only=True)
        sam.load_state_dict(state)
        self.sam = sam.to(self.device).eval()
        from segment_anything.utils.transforms import ResizeLongestSide

        self.transform = ResizeLongestSide(self.sam.image_encoder.img_size)

    def _decode_box(self, image: np.ndarray, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM's three low-resolution masks and their IoU scores for one image's box prompt.

        The box is inset in the field of view, with a positive point at its centre; ``embedding`` is ``(1, C, h, w)``.
        """
        sam = self.sam
        h, w = image.shape[:2]
        x0, y0, x1, y1 = fov_box(image, self.box_margin)
        box = self.transform.apply_boxes(np.array([[x0, y0, x1, y1]]), (h, w))
        pt = self.transform.apply_coords(np.array([[[(x0 + x1) / 2, (y0 + y1) / 2]]]), (h, w))
        sparse, dense = sam.prompt_encoder(
            points=(torch.as_tensor(pt, dtype=torch.float, device=self.device), torch.ones(1, 1, device=self.device)),
            boxes=torch.as_tensor(box, dtype=torch.float, device=self.device),
            masks=None,
        )
        return sam.mask_decoder(
            image_embeddings=embedding,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )

    def params(self) -> dict[str, Any]:
        p = {**super().params(), "model": self.model_name, "mode": self.mode, "checkpoint_md5": self.checkpoint["md5"]}
        p.update(
            {"box_margin": self.box_margin}
            if self.mode == "box"
            else {**self.auto_params, "max_area": self.max_area, "max_border": self.max_border}
        )
        return p

    def _autocast(self) -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    @torch.inference_mode()
    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        rgb = [np.repeat(im, 3, axis=2) if im.shape[2] == 1 else im for im in images]
        if self.mode == "auto":
            return [self._auto(im) for im in rgb]
        out: list[np.ndarray] = []
        for i in range(0, len(rgb), self.batch_size):
            out += self._box_batch(rgb[i : i + self.batch_size])
        return out

    def _box_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        sam = self.sam
        inputs = []
        for im in images:
            x = torch.as_tensor(self.transform.apply_image(im), device=self.device).permute(2, 0, 1).contiguous()
            inputs.append(x)
        batch = torch.stack([sam.preprocess(x[None].float())[0] for x in inputs])
        with self._autocast():
            emb = sam.image_encoder(batch)
        emb = emb.float()
        out = []
        for i, (im, x) in enumerate(zip(images, inputs, strict=True)):
            h, w = im.shape[:2]
            low, iou = self._decode_box(im, emb[i : i + 1])
            masks = sam.postprocess_masks(low, input_size=tuple(x.shape[-2:]), original_size=(h, w))
            best = int(iou[0].argmax())
            out.append((masks[0, best] > sam.mask_threshold).cpu().numpy())
        return out

    def _auto(self, im: np.ndarray) -> np.ndarray:
        from segment_anything import SamAutomaticMaskGenerator

        gen = SamAutomaticMaskGenerator(self.sam, **self.auto_params)
        with self._autocast():
            found = gen.generate(im)
        h, w = im.shape[:2]
        union = np.zeros((h, w), bool)
        n_border = 2 * (h + w) - 4
        for m in found:
            seg = np.asarray(m["segmentation"], bool)
            border = seg[0].sum() + seg[-1].sum() + seg[1:-1, 0].sum() + seg[1:-1, -1].sum()
            if seg.mean() > self.max_area or border / n_border > self.max_border:
                continue  # background
            union |= seg
        return union
