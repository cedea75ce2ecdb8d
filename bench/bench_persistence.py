"""Persistence per image: topo's ``topk_diagrams`` vs a per-image ``gudhi.CubicalComplex`` on the same ROI.

Both sides compute the same thing -- cubical persistence of the grey image with ``+inf`` outside the Otsu ROI,
infinite deaths capped at the ROI maximum, top-48 H0 / top-96 H1 in the documented order -- and the script asserts
that the diagrams are identical before it reports any time. Real images only:

* 28²: BreastMNIST (``../shared/data/breastmnist.npz``, train split);
* 64²: MedNIST (``../shared/data/mednist_64_small.npz``, train split);
* 224²: RGB tiles cut from scikit-image's bundled retina, immunohistochemistry and cell images (``bench/tiles.py``).

Columns: ``topo`` = ``topk_diagrams`` for the whole batch (filtration, GUDHI's dedicated 2-D algorithm through
``CubicalPersistence``, capping, top-k); ``CubicalComplex`` = the per-image reference doing the same work (its
filtration, ``CubicalComplex(top_dimensional_cells=...)``, ``compute_persistence()``, capping, top-k);
``of which PH`` = the construction plus ``compute_persistence()`` alone. ROI masks are computed beforehand and not
timed. One thread (``OMP_NUM_THREADS=1``).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_persistence.py [--n28 500 --n64 300 --n224 48]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gudhi
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from ph_reference import grey, reference_topk  # noqa: E402  (the tests' reference, one definition)
from tiles import real_tiles  # noqa: E402

from topo.pipeline.persistence import FiltrationSpec, topk_diagrams  # noqa: E402
from topo.pipeline.roi import OtsuRoi  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data"


def _cell_tiles(n: int, size: int = 224) -> np.ndarray:
    """Grey fluorescence-cell tiles (skimage ``cell``), as RGB so every 224² tile has the same shape."""
    from skimage import data

    img = data.cell()
    rng = np.random.default_rng(1)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        out[i] = img[y : y + size, x : x + size, None]
    return out


def load(n28: int, n64: int, n224: int) -> dict[str, np.ndarray]:
    with np.load(DATA / "breastmnist.npz") as z:
        b = z["train_images"][:n28][..., None]
    with np.load(DATA / "mednist_64_small.npz") as z:
        m = z["train_images"][:: max(1, len(z["train_images"]) // n64)][:n64][..., None]
    n_cell = n224 // 3
    t = np.concatenate([real_tiles(n224 - n_cell, 224, rgb=True, seed=0), _cell_tiles(n_cell)])
    return {"28² BreastMNIST": b, "64² MedNIST": m, "224² skimage tiles (RGB)": t}


def ph_only(image: np.ndarray, mask: np.ndarray) -> None:
    f = np.where(mask.astype(bool), grey(image), np.inf)
    cc = gudhi.CubicalComplex(top_dimensional_cells=f)
    cc.compute_persistence(min_persistence=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n28", type=int, default=500)
    ap.add_argument("--n64", type=int, default=300)
    ap.add_argument("--n224", type=int, default=48)
    args = ap.parse_args()
    spec = FiltrationSpec()
    rows = []
    for name, images in load(args.n28, args.n64, args.n224).items():
        masks = [r.mask for r in OtsuRoi().checked(list(images))]
        topk_diagrams(list(images[:2]), masks[:2], spec)  # warm-up
        t0 = time.perf_counter()
        ours = topk_diagrams(list(images), masks, spec)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = [reference_topk(im, m) for im, m in zip(images, masks, strict=True)]
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        for im, m in zip(images, masks, strict=True):
            ph_only(im, m)
        t_ph = time.perf_counter() - t0
        for i, (h0, n0, h1, n1) in enumerate(ref):  # identical diagrams, or no timing is reported
            assert (ours.n_h0[i], ours.n_h1[i]) == (n0, n1), f"{name} image {i}: counts differ"
            np.testing.assert_array_equal(ours.h0[i], h0, err_msg=f"{name} image {i} H0")
            np.testing.assert_array_equal(ours.h1[i], h1, err_msg=f"{name} image {i} H1")
        n = len(images)
        rows.append((name, n, 1e3 * t_ours / n, 1e3 * t_ref / n, 1e3 * t_ph / n))
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        f"gudhi {gudhi.__version__}, load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print(
        "| images | n | topo `topk_diagrams` ms/img | CubicalComplex ms/img (same work) | of which PH | speed-up "
        "| speed-up vs PH only | diagrams |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, n, a, b, c in rows:
        print(f"| {name} | {n} | {a:.3f} | {b:.2f} | {c:.2f} | {b / a:.1f}× | {c / a:.1f}× | identical |")


if __name__ == "__main__":
    main()
