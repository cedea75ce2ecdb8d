"""The throughput path of SAM box mode gives the reference path's masks (tiny random-weight SAM, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.pipeline.roi.sam import SamRoi
from topo.pipeline.roi.sam_batched import BatchedSamRoi, enable_sdpa


class _NoSdpa(BatchedSamRoi):
    use_sdpa = False


def _images() -> list[np.ndarray]:
    """Bright discs on a noisy background, two geometries (a batch mixes them), RGB and grey."""
    rng = np.random.default_rng(0)
    out = []
    for i, (h, w, c) in enumerate([(64, 64, 3), (48, 64, 1), (64, 64, 3)]):
        yy, xx = np.mgrid[:h, :w]
        disc = (yy - h / 2 - i) ** 2 + (xx - w / 2 + i) ** 2 < (h / 4) ** 2
        im = rng.integers(0, 60, (h, w, c)) + 150 * disc[..., None]
        out.append(im.astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def tiny(tiny_sam_checkpoint):
    return {"model": "vit_tiny_test", "checkpoint": tiny_sam_checkpoint, "mode": "box", "device": "cpu"}


@pytest.mark.slow  # ~20 s on two busy cores: a 1024² encoder pass per image
def test_batched_masks_equal_unbatched_and_reference(tiny):
    images = _images()
    batched = BatchedSamRoi(**tiny, batch_size=3).masks(images)
    single = BatchedSamRoi(**tiny, batch_size=1).masks(images)
    for b, s, im in zip(batched, single, images, strict=True):
        assert b.shape == im.shape[:2] and b.dtype == bool
        assert np.array_equal(b, s)
    # Without SDPA the fast path is the reference path exactly (pinned upload, pick-then-upsample, batched copy).
    reference = SamRoi(**tiny, batch_size=1).masks(images)
    plain = _NoSdpa(**tiny, batch_size=3).masks(images)
    for p, r in zip(plain, reference, strict=True):
        assert np.array_equal(p, r)
    # The masks are not trivial: the random model still cuts something out.
    assert 0.01 < np.mean([m.mean() for m in reference]) < 0.99
    agree = np.mean([np.mean(b == r) for b, r in zip(batched, reference, strict=True)])
    assert agree > 0.999, f"SDPA masks agree with the reference on {agree:.4%} of pixels"


def test_sdpa_attention_matches_segment_anything(tiny):
    ref = SamRoi(**tiny).sam.image_encoder
    fast = SamRoi(**tiny).sam.image_encoder
    assert enable_sdpa(fast) == len(fast.blocks) == 1
    torch.manual_seed(0)
    x = torch.randn(2, 16, 16, ref.blocks[0].attn.qkv.in_features)
    with torch.inference_mode():
        a, b = ref.blocks[0].attn(x), fast.blocks[0].attn(x)
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert not torch.equal(a, torch.zeros_like(a))
