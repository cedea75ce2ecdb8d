"""OpenCV morphology gives exactly scipy.ndimage's pixels, so the faster Otsu ROI draws the same masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from topo.pipeline.roi.morphology import CROSS, dilate, disk, erode, fill_holes, label, open_close


def _masks(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    noise = rng.random((57, 83)) < 0.5  # odd, non-square: no symmetry to hide an off-by-one
    blobs = ndimage.gaussian_filter(rng.random((64, 64)), 3) > 0.5  # shapes touching every edge
    return [noise, blobs, np.ones((20, 30), bool), np.zeros((20, 30), bool)]


@pytest.mark.parametrize("r", [1, 2, 4, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_erode_and_dilate_equal_scipy(r: int, seed: int) -> None:
    s = disk(r)
    for m in _masks(seed):
        for border in (0, 1):
            np.testing.assert_array_equal(erode(m, s, border), ndimage.binary_erosion(m, s, border_value=border))
        np.testing.assert_array_equal(dilate(m, s), ndimage.binary_dilation(m, s))
        np.testing.assert_array_equal(erode(m, CROSS), ndimage.binary_erosion(m))


@pytest.mark.parametrize("r", [1, 4])
def test_open_close_equals_scipy_on_an_edge_padded_copy(r: int) -> None:
    s = disk(r)
    for m in _masks(2):
        p = np.pad(m, r, mode="edge")
        expected = ndimage.binary_closing(ndimage.binary_opening(p, s), s)[r:-r, r:-r]
        got = open_close(m, s)
        np.testing.assert_array_equal(got, expected)
        assert got.shape == m.shape


def test_disk_is_the_euclidean_ball() -> None:
    d = disk(2)
    assert d.shape == (5, 5) and d.sum() == 13 and d[2].all() and not d[0, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fill_holes_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ring = np.zeros((40, 50), bool)
    ring[5:30, 8:40] = True
    ring[10:25, 14:34] = False  # one hole
    ring[0, 20:30] = True  # foreground on the border must not close anything
    for m in [*_masks(seed), ring, rng.random((31, 29)) < 0.7]:
        np.testing.assert_array_equal(fill_holes(m), ndimage.binary_fill_holes(m))
    assert fill_holes(ring)[15, 20] and not ring[15, 20]


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", range(6))
def test_label_finds_scipys_components(connectivity: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.random((int(rng.integers(1, 90)), int(rng.integers(1, 90)))) < rng.uniform(0.1, 0.9)
    ours, n = label(m, connectivity)
    theirs, n_scipy = ndimage.label(m, structure=None if connectivity == 4 else np.ones((3, 3)))
    assert n == n_scipy
    # Same components, numbered possibly differently: the label pairs form a one-to-one map.
    pairs = np.unique(np.stack([ours.ravel(), theirs.ravel()]), axis=1)
    assert pairs.shape[1] == n + 1 and len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == n + 1
    assert np.array_equal(ours == 0, ~m)
