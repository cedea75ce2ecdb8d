"""Persistence on the ROI: equal to GUDHI's plain CubicalComplex, invariant under the dihedral group, top-k order."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.datasets import demo_npz
from ph_reference import reference_topk, skimage_tiles

from topo.pipeline.persistence import FiltrationSpec, filtration, grey_levels, top_k, topk_diagrams
from topo.pipeline.roi import OtsuRoi

SPEC = FiltrationSpec()


@pytest.fixture(scope="module")
def breast() -> np.ndarray:
    # The BreastMNIST embedded in the package: real ultrasound images, no data beside the repository needed.
    with np.load(demo_npz()) as z:
        return z["train_images"][:40]


@pytest.fixture(scope="module")
def mednist(npz_data) -> np.ndarray:
    """64² grey images of six classes: generated ones (blob counts per class), or the real MedNIST under
    ``-m shared_data``."""
    with np.load(npz_data / "mednist_64_small.npz") as z:
        imgs, labels = z["train_images"], z["train_labels"].ravel()
    # Five images of each of the six classes (CT, MRI, X-ray, hand... or 1..6 blobs): different topologies.
    idx = np.concatenate([np.flatnonzero(labels == c)[:5] for c in range(6)])
    return imgs[idx]


@pytest.fixture(scope="module")
def tiles() -> list[np.ndarray]:
    return skimage_tiles(224, per_image=2)


def _otsu(images) -> list[np.ndarray]:
    return [r.mask for r in OtsuRoi().checked([im if im.ndim == 3 else im[..., None] for im in images])]


def _assert_equal_to_reference(images, masks, spec: FiltrationSpec) -> None:
    got = topk_diagrams(list(images), list(masks), spec)
    for i, (im, m) in enumerate(zip(images, masks, strict=True)):
        h0, n0, h1, n1 = reference_topk(im, m, k0=spec.k0, k1=spec.k1, superlevel=spec.direction == "superlevel")
        assert (got.n_h0[i], got.n_h1[i]) == (n0, n1), f"image {i}: counts differ"
        np.testing.assert_array_equal(got.h0[i], h0, err_msg=f"image {i}: H0 differs from GUDHI")
        np.testing.assert_array_equal(got.h1[i], h1, err_msg=f"image {i}: H1 differs from GUDHI")


@pytest.mark.parametrize("direction", ["sublevel", "superlevel"])
def test_breastmnist_otsu_roi_equals_gudhi(breast, direction):
    _assert_equal_to_reference(breast, _otsu(breast), FiltrationSpec(direction=direction))


def test_mednist_64_equals_gudhi_with_and_without_roi(mednist):
    _assert_equal_to_reference(mednist, _otsu(mednist), SPEC)
    _assert_equal_to_reference(mednist, [None] * len(mednist), SPEC)


def test_224_rgb_tiles_equal_gudhi_small_k(tiles):
    # Small k puts the cut inside the diagram, so the documented order decides which pairs are kept.
    spec = FiltrationSpec(k0=8, k1=16)
    _assert_equal_to_reference(tiles, _otsu(tiles), spec)
    _assert_equal_to_reference(tiles, _otsu(tiles), SPEC)


def test_roi_with_holes_caps_infinite_h1_at_roi_max(breast):
    # A ROI with a hole: the class around the hole never dies inside the ROI, so its death is capped.
    im = breast[3]
    mask = np.ones(im.shape, np.uint8)
    mask[10:16, 10:16] = 0
    _assert_equal_to_reference([im], [mask], SPEC)
    got = topk_diagrams([im], [mask], SPEC)
    roi_max = np.float32(im[mask.astype(bool)].max() / 255.0)
    h1 = got.h1[0, : got.n_h1[0]]
    assert np.isfinite(got.h0).all() and np.isfinite(got.h1).all()
    assert (h1[:, 1] == roi_max).any(), "the hole's class should die at the ROI maximum"
    assert got.h0[0, : got.n_h0[0], 1].max() == roi_max


def test_pixels_outside_the_roi_do_not_matter(mednist):
    im = mednist[0].copy()
    (mask,) = _otsu([im])
    before = topk_diagrams([im], [mask], SPEC)
    rng = np.random.default_rng(0)
    im[mask == 0] = rng.integers(0, 256, size=int((mask == 0).sum()), dtype=np.uint8)
    after = topk_diagrams([im], [mask], SPEC)
    np.testing.assert_array_equal(before.h0, after.h0)
    np.testing.assert_array_equal(before.h1, after.h1)


_D4 = {
    "flip_lr": np.fliplr,
    "flip_ud": np.flipud,
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "transpose": lambda a: np.swapaxes(a, 0, 1),
}


@pytest.mark.parametrize("op", list(_D4))
def test_flips_and_rotations_leave_diagrams_unchanged(op, breast, mednist, tiles):
    t = _D4[op]
    images = [*breast[:10], *mednist[::6], *tiles[:3]]
    masks = _otsu(images)
    base = topk_diagrams(images, masks, SPEC)
    moved = topk_diagrams(
        [np.ascontiguousarray(t(im)) for im in images], [np.ascontiguousarray(t(m)) for m in masks], SPEC
    )
    np.testing.assert_array_equal(base.n_h0, moved.n_h0)
    np.testing.assert_array_equal(base.n_h1, moved.n_h1)
    np.testing.assert_array_equal(base.h0, moved.h0)
    np.testing.assert_array_equal(base.h1, moved.h1)
    assert base.n_h1.sum() > 0  # the property is not vacuous


def test_a_flipped_mask_alone_changes_the_diagram(breast):
    # Control for the invariance test: flipping only the mask (not the image) must change something.
    im = breast[0]
    (mask,) = _otsu([im])
    assert not np.array_equal(mask, np.fliplr(mask))
    a = topk_diagrams([im], [mask], SPEC)
    b = topk_diagrams([im], [np.ascontiguousarray(np.fliplr(mask))], SPEC)
    assert not (np.array_equal(a.h0, b.h0) and np.array_equal(a.h1, b.h1))


def test_top_k_order_is_total_and_input_order_free():
    d = np.array([[0.1, 0.5], [0.0, 0.4], [0.2, 0.6], [0.3, 0.3], [0.0, 0.9], [0.2, 0.6]])
    out, n = top_k(d, 4)
    assert n == 4 and out.dtype == np.float32 and out.shape == (4, 2)
    np.testing.assert_array_equal(out, np.float32([[0.0, 0.9], [0.0, 0.4], [0.1, 0.5], [0.2, 0.6]]))
    rng = np.random.default_rng(1)
    for _ in range(5):
        np.testing.assert_array_equal(top_k(d[rng.permutation(len(d))], 4)[0], out)
    padded, n = top_k(d[:2], 5)
    assert n == 2 and not padded[2:].any()
    empty, n = top_k(np.zeros((0, 2)), 3)
    assert n == 0 and not empty.any()


def test_grey_levels_and_filtration_follow_the_spec():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[1, 0] = (0, 0, 255)
    rgb[1, 1] = (255, 255, 255)
    np.testing.assert_allclose(grey_levels(rgb), [[0.299, 0.587], [0.114, 1.0]])
    np.testing.assert_array_equal(grey_levels(np.full((2, 2, 1), 51, np.uint8)), np.full((2, 2), 0.2))
    mask = np.array([[1, 0], [1, 1]])
    f = filtration(rgb, mask, FiltrationSpec(direction="superlevel"))
    assert f[0, 1] == np.inf
    np.testing.assert_allclose(f[[0, 1, 1], [0, 0, 1]], [1 - 0.299, 1 - 0.114, 0.0])


def test_bad_inputs_are_refused_with_reasons():
    im = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="empty ROI"):
        filtration(im, np.zeros((4, 4)), SPEC)
    with pytest.raises(ValueError, match=r"mask shape \(3, 3\)"):
        filtration(im, np.ones((3, 3)), SPEC)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        grey_levels(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="'sideways'"):
        FiltrationSpec(direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k0=0"):
        FiltrationSpec(k0=0)


def test_spec_round_trips_through_json():
    spec = FiltrationSpec(direction="superlevel", k0=12, k1=34)
    j = spec.to_json()
    assert FiltrationSpec.from_json(j) == spec
    assert j["infinite_deaths"].startswith("set to the maximum filtration value inside the ROI")
    assert "persistence descending" in j["ordering"]
