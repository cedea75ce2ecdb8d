"""A reference for the stored diagrams, written from the documented filtration spec with GUDHI's plain API.

Independent of :mod:`topo.pipeline.persistence` on purpose: it uses ``gudhi.CubicalComplex`` (not the sklearn
fast path), its own grey conversion and its own sort, so a test comparing the two checks the spec, not the code
against itself.
"""

from __future__ import annotations

import gudhi
import numpy as np

# Real images for 224² tests, all bundled with scikit-image (no download): fundus photograph, IHC slide, cells.
SKIMAGE_224 = ("retina", "immunohistochemistry", "cell")


def grey(image: np.ndarray) -> np.ndarray:
    """Documented grey levels: BT.601 luma for RGB, divided by 255."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3:
        a = a.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return a.astype(np.float64) / 255.0


def reference_topk(
    image: np.ndarray, mask: np.ndarray | None, *, k0: int = 48, k1: int = 96, superlevel: bool = False
) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(pd_h0, n_h0, pd_h1, n_h1) as the store documents them, via ``gudhi.CubicalComplex``."""
    f = grey(image)
    if superlevel:
        f = 1.0 - f
    if mask is not None:
        f = np.where(np.asarray(mask).astype(bool), f, np.inf)
    cc = gudhi.CubicalComplex(top_dimensional_cells=f)
    cc.compute_persistence(min_persistence=0.0)
    cap = f[np.isfinite(f)].max()
    out: list = []
    for dim, k in ((0, k0), (1, k1)):
        iv = np.asarray(cc.persistence_intervals_in_dimension(dim), dtype=np.float64).reshape(-1, 2).copy()
        iv[np.isinf(iv[:, 1]), 1] = cap
        rows = sorted((float(b), float(d)) for b, d in iv)
        rows.sort(key=lambda bd: (-(bd[1] - bd[0]), bd[0], bd[1]))
        rows = rows[:k]
        arr = np.zeros((k, 2), np.float32)
        if rows:
            arr[: len(rows)] = np.array(rows)
        out += [arr, len(rows)]
    return out[0], out[1], out[2], out[3]


def skimage_tiles(size: int = 224, per_image: int = 4) -> list[np.ndarray]:
    """Real ``size``² tiles (uint8, H×W×3 or H×W) cut from scikit-image's bundled photographs."""
    import skimage.data

    tiles = []
    for name in SKIMAGE_224:
        img = getattr(skimage.data, name)()
        h, w = img.shape[:2]
        ys = np.linspace(0, h - size, 2).astype(int)
        xs = np.linspace(0, w - size, 2).astype(int)
        # Tiles from the middle of the image first: the retina's corners are black background.
        cands = [(h // 2 - size // 2, w // 2 - size // 2)] + [(y, x) for y in ys for x in xs]
        for y, x in cands[:per_image]:
            tiles.append(np.ascontiguousarray(img[y : y + size, x : x + size]))
    return tiles
