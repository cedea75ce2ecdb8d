"""Otsu on dermoscopy-like generated cases: frames, a black vignette, border-touching and bright-on-dark lesions."""

from __future__ import annotations

import numpy as np
import pytest

from topo.pipeline.roi import OtsuRoi
from topo.pipeline.roi.field_of_view import field_of_view, frame_box


def _skin(h=128, w=160, level=190, seed=0) -> np.ndarray:
    # Textured skin: a flat background would look like a constant frame to the frame detector.
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(level, 8, (h, w)), 0, 255)


def _lesion(img: np.ndarray, cy: float, cx: float, r: float, level: float) -> np.ndarray:
    y, x = np.ogrid[: img.shape[0], : img.shape[1]]
    inside = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    out = img.copy()
    out[inside] = level + (img[inside] - img[inside].mean()) * 0.5
    return out


def _rgb(g: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _truth(shape, cy, cx, r) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def _mask(img: np.ndarray, **kw) -> np.ndarray:
    (r,) = OtsuRoi(**kw).checked([img])
    assert r.fallback_reason is None
    return r.mask.astype(bool)


@pytest.mark.parametrize("frame", [255, 0])
def test_a_thin_frame_is_not_image_and_does_not_flip_polarity(frame):
    g = _lesion(_skin(), 64, 80, 26, 80)
    g[:6], g[-6:], g[:, :5], g[:, -5:] = frame, frame, frame, frame
    assert frame_box(g.astype(np.uint8)) == (6, 122, 5, 155)
    m = _mask(_rgb(g))
    assert _iou(m, _truth(g.shape, 64, 80, 26)) > 0.9
    assert not m[:6].any() and not m[:, :5].any()


def test_the_black_vignette_is_excluded_and_never_becomes_the_roi():
    g = _lesion(_skin(160, 160), 80, 80, 28, 90)
    y, x = np.ogrid[:160, :160]
    g[(y - 80) ** 2 + (x - 80) ** 2 > 72**2] = 5  # a contact dermoscope's field of view
    fov = field_of_view(g.astype(np.uint8))
    assert fov[80, 80] and not fov[0, 0] and not fov[80, 2]
    m = _mask(_rgb(g))
    assert _iou(m, _truth(g.shape, 80, 80, 28)) > 0.85
    assert _iou(m, fov) < 0.5 and not m[0, 0]


def test_a_large_lesion_touching_the_border_is_taken_with_its_edge_pixels():
    g = _lesion(_skin(), 64, 20, 70, 90)  # centred off the left edge, covering about half the image
    truth = _truth(g.shape, 64, 20, 70)
    m = _mask(_rgb(g))
    assert _iou(m, truth) > 0.9
    assert m[:, 0].mean() > 0.9  # edge pixels are in the mask: morphology pads by edge values, not zeros


def test_a_bright_lesion_on_dark_skin_is_found_by_the_centre_prior():
    g = _lesion(_skin(level=70), 64, 80, 24, 200)
    m = _mask(_rgb(g))
    assert _iou(m, _truth(g.shape, 64, 80, 24)) > 0.9
    # A dataset that says its lesions are dark gets the dark side (the skin, holes filled), as it asked: the
    # quality flags (area >= 0.85) are what catch that.
    assert _mask(_rgb(g), polarity="dark").mean() > 0.9


def test_polarity_is_checked():
    with pytest.raises(ValueError, match="polarity must be one of auto, dark, bright, got 'up'"):
        OtsuRoi(polarity="up")
    assert OtsuRoi().params()["polarity"] == "auto"


def test_a_constant_background_is_background_not_a_frame():
    img = np.full((64, 64), 30, np.uint8)
    img[20:44, 20:44] = 200
    assert frame_box(img) == (0, 64, 0, 64)


def test_sam_box_prompt_is_inset_within_the_field_of_view():
    from topo.pipeline.roi.sam import fov_box

    g = _skin(100, 120)
    g[:6] = 255  # a white frame along the top
    x0, y0, x1, y1 = fov_box(_rgb(g), 0.05)
    assert y0 == pytest.approx(6 + 0.05 * 94) and y1 == pytest.approx(99 - 0.05 * 94)
    assert x0 == pytest.approx(0.05 * 120) and x1 == pytest.approx(119 - 0.05 * 120)


def test_the_field_of_view_memo_never_answers_for_another_image():
    from topo.pipeline.roi import field_of_view as fov_mod

    skin = _skin(160, 160).astype(np.uint8)
    y, x = np.ogrid[:160, :160]
    vignetted = skin.copy()
    vignetted[(y - 80) ** 2 + (x - 80) ** 2 > 72**2] = 5
    first = field_of_view(skin)
    assert first.all()
    first[:] = False  # the caller's copy: changing it must not change what the memo answers
    assert field_of_view(skin).all()
    # One pixel's difference is another image: its own field, not the memo's.
    assert np.array_equal(field_of_view(vignetted), fov_mod._field_of_view(vignetted))
    assert not field_of_view(vignetted)[0, 0]
    for seed in range(fov_mod.FIELD_MEMO + 5):  # bounded: old entries go
        field_of_view(_skin(16, 16, seed=seed).astype(np.uint8))
    assert len(fov_mod._memo) == fov_mod.FIELD_MEMO
