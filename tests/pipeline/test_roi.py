"""ROI backends: one property test for all of them (none, otsu, a tiny random-weight SAM), then each one's own rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.datasets import demo_npz
from ph_reference import skimage_tiles

from topo.pipeline.roi import NoRoi, OtsuRoi, make_roi, roi_names
from topo.pipeline.roi.sam import (
    SAM_CHECKPOINT_ENV,
    SamRoi,
    file_digests,
    resolve_checkpoint,
)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    # Three real BreastMNIST images (the demo embedded in the package) and two RGB 224² tiles.
    with np.load(demo_npz()) as z:
        grey = [im[..., None] for im in z["test_images"][:3]]
    return [*grey, *skimage_tiles(224, per_image=1)[:2]]


def _backend(name: str, ckpt) -> object:
    if name == "sam":
        return make_roi("sam", model="vit_tiny_test", checkpoint=str(ckpt), mode="box", device="cpu")
    return make_roi(name)


# SAM on CPU: ~10 s on two busy cores.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "sam" else n for n in roi_names()])
def test_every_backend_keeps_the_roi_contract(name, images, tiny_sam_checkpoint):
    roi = _backend(name, tiny_sam_checkpoint)
    assert roi.name == name
    first = roi.checked(images)
    again = roi.checked(images)
    assert len(first) == len(images)
    for im, r, r2 in zip(images, first, again, strict=True):
        assert r.mask.shape == im.shape[:2] and r.mask.dtype == np.uint8
        assert set(np.unique(r.mask)) <= {0, 1}
        assert r.mask.mean() >= roi.min_area  # degenerate masks are replaced by the whole image
        if r.fallback_reason:
            assert (r.mask == 1).all()
        np.testing.assert_array_equal(r.mask, r2.mask)  # deterministic
    params = roi.params()
    assert params["min_area"] == roi.min_area
    json.dumps(params)  # recorded in the store's attributes as JSON


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown ROI backend 'grabcut'; valid: none, otsu, sam"):
        make_roi("grabcut")


def test_no_roi_is_the_whole_image():
    (r,) = NoRoi().checked([np.zeros((5, 7, 3), np.uint8)])
    assert r.mask.shape == (5, 7) and r.mask.all() and r.fallback_reason is None


# --------------------------------------------------------------------------------------------- otsu
def _disk_image(h=64, w=64, r=18, fg=200, bg=30, cy=None, cx=None) -> np.ndarray:
    y, x = np.ogrid[:h, :w]
    cy, cx = (h // 2 if cy is None else cy), (w // 2 if cx is None else cx)
    img = np.full((h, w), bg, np.uint8)
    img[(y - cy) ** 2 + (x - cx) ** 2 <= r * r] = fg
    return img[..., None]


def test_otsu_finds_the_object_whichever_its_polarity():
    bright = _disk_image()
    dark = 255 - bright
    truth = bright[..., 0] > 100
    for im in (bright, dark):
        (r,) = OtsuRoi().checked([im])
        assert r.fallback_reason is None
        iou = (r.mask.astype(bool) & truth).sum() / (r.mask.astype(bool) | truth).sum()
        assert iou > 0.95


def test_otsu_fills_holes_and_drops_specks():
    im = _disk_image(r=20)
    im[28:36, 28:36] = 30  # a hole in the object: would be a spurious H1 class
    im[2:8, 2:8] = 200  # a speck: 36 pixels, under keep_frac (10 %) of the object
    (r,) = OtsuRoi(morph_frac=0.0).checked([im])
    assert r.mask[32, 32] == 1 and r.mask[2:8, 2:8].sum() == 0
    (kept,) = OtsuRoi(morph_frac=0.0, keep_frac=0.0).checked([im])
    assert kept.mask[4, 4] == 1


def test_otsu_is_flip_and_rotation_equivariant(images):
    roi = OtsuRoi()
    for im in images:
        base = roi.checked([im])[0].mask
        for t in (np.fliplr, np.flipud, lambda a: np.rot90(a, 1)):
            moved = roi.checked([np.ascontiguousarray(t(im))])[0].mask
            np.testing.assert_array_equal(moved, t(base))


def test_degenerate_masks_fall_back_to_the_whole_image_with_a_reason():
    (flat,) = OtsuRoi().checked([np.full((32, 32, 1), 90, np.uint8)])
    assert flat.fallback_reason == "empty ROI mask; whole image used" and flat.mask.all()
    tiny = _disk_image(h=100, w=100, r=4)  # ~0.5 % of the image
    (r,) = OtsuRoi(morph_frac=0.0).checked([tiny])
    assert r.fallback_reason is not None and r.fallback_reason.startswith("ROI covers 0.")
    assert "< 1%" in r.fallback_reason and r.mask.all()
    (ok,) = OtsuRoi(morph_frac=0.0, min_area=0.001).checked([tiny])
    assert ok.fallback_reason is None and 0 < ok.mask.mean() < 0.01


def test_backend_parameters_are_checked():
    with pytest.raises(ValueError, match=r"min_area must be in \[0, 1\), got 1.5"):
        OtsuRoi(min_area=1.5)
    with pytest.raises(ValueError, match="morph_frac"):
        OtsuRoi(morph_frac=0.7)
    with pytest.raises(ValueError, match="keep_frac"):
        OtsuRoi(keep_frac=-0.1)
    assert OtsuRoi(morph_frac=0.05).params() == {"min_area": 0.01, "morph_frac": 0.05, "keep_frac": 0.1}


# --------------------------------------------------------------------------------------------- sam
@pytest.mark.slow  # ~16 s on two busy cores
def test_sam_auto_mode_runs_the_mask_generator(images, tiny_sam_checkpoint):
    roi = SamRoi(
        model="vit_tiny_test",
        checkpoint=tiny_sam_checkpoint,
        mode="auto",
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        device="cpu",
    )
    res = roi.checked(images[:2])
    assert [r.mask.shape for r in res] == [(28, 28), (28, 28)]
    # With the quality filters off the random model's own masks come through (not the whole-image fallback).
    assert any(r.fallback_reason is None and 0 < r.mask.mean() < 1 for r in res)
    p = roi.params()
    assert p["mode"] == "auto" and p["points_per_side"] == 4 and p["max_area"] == 0.95
    assert "box_margin" not in p


def test_sam_box_params_record_the_checkpoint(tiny_sam_checkpoint):
    roi = SamRoi(model="vit_tiny_test", checkpoint=tiny_sam_checkpoint, mode="box", device="cpu")
    p = roi.params()
    assert p["checkpoint_md5"] == file_digests(tiny_sam_checkpoint)["md5"]
    assert p["mode"] == "box" and p["box_margin"] == 0.05 and "points_per_side" not in p


def test_sam_checkpoint_resolution(tmp_path, tiny_sam_checkpoint, monkeypatch):
    monkeypatch.delenv(SAM_CHECKPOINT_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"--sam-checkpoint or set {SAM_CHECKPOINT_ENV}"):
        resolve_checkpoint("vit_h", None)
    with pytest.raises(FileNotFoundError, match="SAM checkpoint not found"):
        resolve_checkpoint("vit_h", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown SAM model 'vit_x'; valid: vit_h, vit_l, vit_b, vit_tiny_test"):
        resolve_checkpoint("vit_x", tiny_sam_checkpoint)
    monkeypatch.setenv(SAM_CHECKPOINT_ENV, str(tiny_sam_checkpoint))
    got = resolve_checkpoint("vit_tiny_test", None)
    assert got["file"] == tiny_sam_checkpoint.name and not got["official"]
    assert got["sha256"] == file_digests(tiny_sam_checkpoint)["sha256"]
    fake = tmp_path / "sam_vit_b_01ec64.pth"  # an official name with the wrong content
    fake.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="the official file has 01ec64d29a2fca3f0661936605ae66f5: corrupt or altered"):
        resolve_checkpoint("vit_b", fake)
    with pytest.raises(ValueError, match="official vit_b checkpoint, but --sam-model is vit_h"):
        resolve_checkpoint("vit_h", fake)
    with pytest.raises(ValueError, match="SAM mode must be 'box' or 'auto', got 'everything'"):
        SamRoi(model="vit_tiny_test", checkpoint=tiny_sam_checkpoint, mode="everything")
