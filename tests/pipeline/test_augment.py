"""The augmentation operators: shape/dtype contract, determinism, identities, masks, registry errors."""

from __future__ import annotations

import numpy as np
import pytest

from topo.pipeline import augment
from topo.pipeline.augment import (
    DEFAULT_COMBINATIONS,
    EXACT_HOMEOMORPHISMS,
    OPERATORS,
    apply,
    combination_name,
    get_operator,
    parse_combination,
)

SHAPES = [(28, 28), (28, 28, 1), (28, 28, 3), (64, 48), (48, 64, 3), (224, 224, 3)]
INTENSITIES = [0.0, 0.37, 1.0]


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth random image with structure (blobs), so that every operator has something to change."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), float)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.3) * min(h, w)
        img += rng.uniform(60, 120) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    if len(shape) == 3:
        img = np.stack([np.roll(img, 3 * c, axis=1) for c in range(shape[2])], axis=-1)
    return img


def _mask(shape: tuple[int, ...]) -> np.ndarray:
    """An asymmetric ROI (an off-centre L shape), so flips and turns visibly move it."""
    h, w = shape[:2]
    m = np.zeros((h, w), np.uint8)
    m[h // 8 : h // 2, w // 8 : w // 3] = 1
    m[h // 3 : h // 2, w // 8 : (3 * w) // 5] = 1
    return m


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(OPERATORS))
def test_every_operator_keeps_shape_and_dtype(name: str, shape: tuple[int, ...]) -> None:
    img, mask = _image(shape), _mask(shape)
    before = img.copy(), mask.copy()
    for s in INTENSITIES:
        out, out_mask = OPERATORS[name](img, mask, s, np.random.default_rng(1))
        assert out.dtype == np.uint8 and out.shape == img.shape, (name, s, out.shape)
        assert out_mask is not None and out_mask.dtype == np.uint8 and out_mask.shape == mask.shape
        out2, none_mask = OPERATORS[name](img, None, s, np.random.default_rng(1))
        assert none_mask is None and out2.shape == img.shape
    # Inputs are never modified in place.
    assert np.array_equal(img, before[0]) and np.array_equal(mask, before[1])


@pytest.mark.parametrize("name", list(OPERATORS))
def test_deterministic_for_a_seed(name: str) -> None:
    img, mask = _image((40, 40, 3), seed=3), _mask((40, 40))
    a = OPERATORS[name](img, mask, 0.6, np.random.default_rng(123))
    b = OPERATORS[name](img, mask, 0.6, np.random.default_rng(123))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_noise_depends_on_the_seed() -> None:
    img = _image((32, 32))
    a, _ = OPERATORS["gaussian_noise"](img, None, 0.8, np.random.default_rng(0))
    b, _ = OPERATORS["gaussian_noise"](img, None, 0.8, np.random.default_rng(1))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", [n for n, op in OPERATORS.items() if op.identity_at_zero])
@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (64, 48, 3)], ids=lambda s: "x".join(map(str, s)))
def test_zero_intensity_is_identity(name: str, shape: tuple[int, ...]) -> None:
    img, mask = _image(shape, seed=5), _mask(shape)
    out, out_mask = OPERATORS[name](img, mask, 0.0, np.random.default_rng(0))
    assert np.array_equal(out, img)
    assert np.array_equal(out_mask, mask)


def test_non_homeomorphisms_are_identity_at_zero_and_change_at_one() -> None:
    # The promise in the docstring: every operator except the exact homeomorphisms is the identity at s = 0.
    assert {n for n, op in OPERATORS.items() if not op.identity_at_zero} == set(EXACT_HOMEOMORPHISMS)
    img = _image((56, 56), seed=2)
    for name in OPERATORS:
        out, _ = OPERATORS[name](img, None, 1.0, np.random.default_rng(0))
        assert not np.array_equal(out, img), name


def test_geometric_operators_move_the_mask_with_the_image() -> None:
    shape = (40, 40)
    mask = _mask(shape)
    img = (mask * 200 + 20).astype(np.uint8)  # the image is the mask: where one goes, the other must follow
    for name, op in OPERATORS.items():
        for s in (0.1, 0.5, 0.9):
            out, out_mask = op(img, mask, s, np.random.default_rng(7))
            if op.geometric:
                moved = out > 110
                agreement = (moved == out_mask.astype(bool)).mean()
                assert agreement > 0.97, (name, s, agreement)
                if name != "rotate":
                    assert np.array_equal(moved, out_mask.astype(bool)), name
            else:
                assert out_mask is mask, name  # intensity/morphology operators leave the mask alone


def test_exact_homeomorphisms_are_the_grid_symmetries() -> None:
    img, mask = _image((30, 30), seed=9), _mask((30, 30))
    rng = np.random.default_rng(0)
    out, m = OPERATORS["hflip"](img, mask, 0.5, rng)
    assert np.array_equal(out, img[:, ::-1]) and np.array_equal(m, mask[:, ::-1])
    out, m = OPERATORS["vflip"](img, mask, 0.5, rng)
    assert np.array_equal(out, img[::-1]) and np.array_equal(m, mask[::-1])
    for s, k in [(0.0, 1), (0.2, 1), (0.4, 2), (0.66, 2), (0.7, 3), (1.0, 3)]:
        out, m = OPERATORS["rot90"](img, mask, s, rng)
        assert np.array_equal(out, np.rot90(img, k)) and np.array_equal(m, np.rot90(mask, k)), s
    # A non-square image keeps its shape: only the half turn is allowed.
    rect = _image((20, 30, 3))
    out, _ = OPERATORS["rot90"](rect, None, 0.1, rng)
    assert np.array_equal(out, np.rot90(rect, 2, axes=(0, 1)))


def test_morphology_orders_and_is_continuous_in_s() -> None:
    img = _image((56, 56), seed=4).astype(int)
    rng = np.random.default_rng(0)
    dil = OPERATORS["dilation"](img.astype(np.uint8), None, 0.7, rng)[0].astype(int)
    ero = OPERATORS["erosion"](img.astype(np.uint8), None, 0.7, rng)[0].astype(int)
    assert (dil >= img).all() and (ero <= img).all()
    # Fractional radii blend two disks: a small step in s gives a small change (no jump at integer radii).
    r1 = 1.0 / (augment.MORPH_MAX_RADIUS_FRAC * 56)  # s at which the radius reaches 1 pixel
    below = OPERATORS["dilation"](img.astype(np.uint8), None, r1 - 0.01, rng)[0].astype(int)
    above = OPERATORS["dilation"](img.astype(np.uint8), None, r1 + 0.01, rng)[0].astype(int)
    assert np.abs(above - below).max() <= 0.05 * np.abs(above - img).max() + 1


def test_spatial_parameters_scale_with_image_size() -> None:
    # The same s blurs a 28² and a 224² version of one picture by a comparable amount relative to its size.
    import cv2

    small = _image((28, 28), seed=6)
    large = cv2.resize(small, (224, 224), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    for name in ("gaussian_blur", "dilation"):
        bs = OPERATORS[name](small, None, 0.8, rng)[0]
        bl = OPERATORS[name](large, None, 0.8, rng)[0]
        bl_small = cv2.resize(bl, (28, 28), interpolation=cv2.INTER_AREA)
        large_small = cv2.resize(large, (28, 28), interpolation=cv2.INTER_AREA)
        change_small = np.abs(bs.astype(int) - small).mean()
        change_large = np.abs(bl_small.astype(int) - large_small).mean()
        assert 0.3 < change_large / change_small < 3.0, (name, change_small, change_large)


def test_apply_runs_the_operators_in_order_with_the_same_s() -> None:
    img, mask = _image((32, 32, 3), seed=8), _mask((32, 32))
    combo = ("gaussian_noise", "gaussian_blur", "hflip")
    out, m = apply(combo, img, mask, 0.5, np.random.default_rng(11))
    rng = np.random.default_rng(11)
    ref, ref_m = img, mask
    for n in combo:
        ref, ref_m = OPERATORS[n](ref, ref_m, 0.5, rng)
    assert np.array_equal(out, ref) and np.array_equal(m, ref_m)
    out2, _ = apply("gaussian_noise+gaussian_blur+hflip", img, mask, 0.5, np.random.default_rng(11))
    assert np.array_equal(out2, out)


def test_default_combinations_are_valid_and_distinct() -> None:
    names = [combination_name(c) for c in DEFAULT_COMBINATIONS]
    assert len(set(names)) == len(names)
    assert all(1 <= len(c) <= 3 for c in DEFAULT_COMBINATIONS)
    singles = {c[0] for c in DEFAULT_COMBINATIONS if len(c) == 1}
    # Every operator appears as a single, except that one exact homeomorphism stands for all three.
    assert singles | set(EXACT_HOMEOMORPHISMS) == set(OPERATORS)
    assert len(singles & set(EXACT_HOMEOMORPHISMS)) == 1
    assert any(len(c) == 3 for c in DEFAULT_COMBINATIONS) and any(len(c) == 2 for c in DEFAULT_COMBINATIONS)


def test_bad_names_and_arguments_raise_value_error() -> None:
    img = _image((16, 16))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"unknown augmentation operator 'sharpen'.*gaussian_blur"):
        apply(("gaussian_blur", "sharpen"), img, None, 0.5, rng)
    with pytest.raises(ValueError, match="valid operators: hflip, vflip"):
        get_operator("flip")
    with pytest.raises(ValueError, match="1 to 3 operators"):
        parse_combination(("hflip", "vflip", "rot90", "rotate"))
    with pytest.raises(ValueError, match="1 to 3 operators"):
        parse_combination(())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        apply("contrast", img, None, 1.5, rng)
    with pytest.raises(ValueError, match="uint8"):
        apply("contrast", img.astype(np.float32), None, 0.5, rng)
    with pytest.raises(ValueError, match="mask shape"):
        apply("hflip", img, np.ones((8, 8), np.uint8), 0.5, rng)


def test_operator_records_are_frozen_and_documented() -> None:
    op = OPERATORS["gaussian_blur"]
    assert op.category == "smoothing" and not op.geometric and "min(H, W)" in op.native
    with pytest.raises(AttributeError):
        op.name = "other"  # type: ignore[misc]
    assert {o.category for o in OPERATORS.values()} == {
        "homeomorphism",
        "boundary",
        "smoothing",
        "intensity",
        "morphology",
    }
