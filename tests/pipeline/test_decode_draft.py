"""JPEG draft decode: stored pixels within the documented tolerance of a full decode + resize, and only when it pays."""

from __future__ import annotations

import io

import cv2
import numpy as np
from fixtures.datasets import dermoscopy_like
from PIL import Image

from topo.pipeline.decode import DRAFT_TOLERANCE, _draft, _from_bytes, decode


def _jpeg(w: int, h: int, seed: int = 0) -> bytes:
    small = dermoscopy_like(1, (96, 128), seed)[0]
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big + np.random.default_rng(seed).normal(0, 6, big.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_draft_decode_stays_within_tolerance_of_the_full_decode():
    for seed, (w, h) in enumerate([(1504, 1129), (1200, 900), (2000, 1500)]):
        data = _jpeg(w, h, seed)
        with Image.open(io.BytesIO(data)) as im:
            assert _draft(im, 224, 224) and im.height < h  # the DCT did reduce it ...
            assert min(im.size) >= 2 * 224  # ... but not below twice the resized size
        a, drafted = _from_bytes(data, (224, 224))
        assert drafted and a.shape[:2] == (224, 224)  # and the image comes back fitted
        fast = decode(data, height=224, width=224, channels=3).image
        full = decode(data, height=224, width=224, channels=3, draft=False).image
        assert fast.shape == full.shape == (224, 224, 3)
        assert np.abs(fast.astype(int) - full.astype(int)).mean() <= DRAFT_TOLERANCE


def test_no_draft_when_the_image_is_not_much_larger_than_the_store_image():
    for w, h in [(640, 480), (1022, 767)]:
        _, drafted = _from_bytes(_jpeg(w, h), (224, 224))
        assert not drafted  # a 1/2 reduction would fall below 2x the resized 299x224
    assert not _from_bytes(_jpeg(1504, 1129), None)[1]  # no target, no draft


def test_the_hash_of_a_drafted_jpeg_is_its_file_hash_independent_of_the_target():
    import hashlib

    data = _jpeg(1504, 1129)
    h1 = decode(data, height=224, width=224, channels=3).input_sha256
    h2 = decode(data, height=128, width=128, channels=1).input_sha256
    assert h1 == h2 == hashlib.sha256(data).hexdigest()
