"""Real 224² test images for benchmarks: tiles cut from the microscopy/retina images bundled with scikit-image."""

from __future__ import annotations

import numpy as np


def real_tiles(n: int, size: int = 224, rgb: bool = True, seed: int = 0) -> np.ndarray:
    """``n`` tiles (n, size, size, 3|1) uint8 at random positions of skimage's retina and IHC images."""
    from skimage import data

    sources = [data.retina(), data.immunohistochemistry()]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        src = sources[i % len(sources)]
        y = rng.integers(0, src.shape[0] - size)
        x = rng.integers(0, src.shape[1] - size)
        tile = src[y : y + size, x : x + size]
        out[i] = np.rot90(tile, k=int(rng.integers(4)))
    if not rgb:
        return np.round(out @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None]
    return out


def write_medmnist_npz(path: str, images: np.ndarray, seed: int = 0) -> None:
    """Save tiles in MedMNIST layout (80/10/10 split, two pseudo-classes by source image)."""
    n = len(images)
    labels = (np.arange(n) % 2).astype(np.uint8)[:, None]
    a, b = int(0.8 * n), int(0.9 * n)
    np.savez(
        path,
        train_images=images[:a],
        train_labels=labels[:a],
        val_images=images[a:b],
        val_labels=labels[a:b],
        test_images=images[b:],
        test_labels=labels[b:],
    )
