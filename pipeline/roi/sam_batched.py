"""SAM box mode built for throughput: the same masks as :class:`~topo.pipeline.roi.sam.SamRoi`, fewer round trips.

What differs from the reference path, and why each change leaves the masks alone:

* the resized images of a batch go to the device as one pinned ``uint8`` block (a quarter of the bytes of float,
  one asynchronous copy); normalising and zero-padding happen there with the same arithmetic as
  ``Sam.preprocess``;
* the image encoder's attention runs through ``torch.nn.functional.scaled_dot_product_attention`` with SAM's
  decomposed relative-position term as an additive bias (what segment-anything-fast does): fused kernels, the same
  function up to rounding;
* the best of SAM's three masks is picked on the device before upsampling (upsampling is per channel, so picking
  first changes nothing), and the masks of a batch are upsampled to store resolution, thresholded and copied back
  together, once per batch instead of once per image.

The model is built once per copy (one Ray actor per GPU, see ``topo.pipeline.job``); the encoder runs under bf16
autocast on CUDA (inherited).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from topo.pipeline.roi.sam import SamRoi


def _sdpa_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """segment-anything's ``image_encoder.Attention.forward`` with the softmax(QKᵀ·scale + rel-pos)V in one call."""
    from segment_anything.modeling.image_encoder import get_rel_pos

    b, h, w, _ = x.shape
    heads = self.num_heads
    qkv = self.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, HW, d)
    bias = None
    if self.use_rel_pos:
        r_h = get_rel_pos(h, h, self.rel_pos_h)
        r_w = get_rel_pos(w, w, self.rel_pos_w)
        r_q = q.reshape(b * heads, h, w, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, r_h)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, r_w)
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(b, heads, h * w, h * w).to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    out = out.view(b, heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return self.proj(out)


def enable_sdpa(image_encoder: torch.nn.Module) -> int:
    """Route every attention block of a SAM image encoder through SDPA; returns how many blocks were patched."""
    from segment_anything.modeling.image_encoder import Attention

    n = 0
    for module in image_encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(_sdpa_forward, module)
            n += 1
    return n


class BatchedSamRoi(SamRoi):
    """:class:`SamRoi` with the throughput path for box mode (auto mode is the mask generator's, unchanged)."""

    use_sdpa = True  # a class switch, not a parameter: it does not change what the store means

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.use_sdpa:
            enable_sdpa(self.sam.image_encoder)

    def _encode(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        sam, size = self.sam, self.sam.image_encoder.img_size
        resized = [self.transform.apply_image(im) for im in images]  # the predictor's own resize, on the CPU
        host = torch.zeros((len(images), size, size, 3), dtype=torch.uint8, pin_memory=self.device.type == "cuda")
        for i, r in enumerate(resized):
            host[i, : r.shape[0], : r.shape[1]] = torch.from_numpy(r)
        # contiguous NCHW, as the reference path: a channels-last input picks other conv kernels (other rounding)
        x = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().contiguous()
        x = (x - sam.pixel_mean) / sam.pixel_std
        for i, r in enumerate(resized):  # Sam.preprocess pads after normalising: the padding is exactly zero
            x[i, :, r.shape[0] :, :] = 0
            x[i, :, :, r.shape[1] :] = 0
        with self._autocast():
            emb = sam.image_encoder(x)
        return emb.float(), [r.shape[:2] for r in resized]

    def _box_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        emb, input_sizes = self._encode(images)
        best = []
        for i, im in enumerate(images):
            low, iou = self._decode_box(im, emb[i : i + 1])  # the reference path's prompt, exactly
            best.append(low[0, iou[0].argmax()])  # indexing by a device tensor: no sync per image
        return self._upsample(best, input_sizes, [im.shape[:2] for im in images])

    def _upsample(
        self, low: list[torch.Tensor], input_sizes: list[tuple[int, int]], sizes: list[tuple[int, int]]
    ) -> list[np.ndarray]:
        """Low-resolution logits → boolean masks at store resolution, one device call per distinct geometry."""
        out: list[np.ndarray | None] = [None] * len(low)
        groups: dict[tuple[tuple[int, int], tuple[int, int]], list[int]] = {}
        for i, key in enumerate(zip(input_sizes, sizes, strict=True)):
            groups.setdefault(key, []).append(i)
        for (input_size, size), idx in groups.items():
            stack = torch.stack([low[i] for i in idx])[:, None]
            masks = self.sam.postprocess_masks(stack, input_size=input_size, original_size=size)
            host = (masks[:, 0] > self.sam.mask_threshold).cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = host[j]
        return [m for m in out if m is not None]
