"""Loader throughput: a topo store vs a folder of PNG files vs an in-memory array (224²×3 images).

All three feed the same DataLoader settings (batch 64, 2 spawned workers) and, in the second measurement, the same
batched augmentation (``topo.trainer.views.augment``, run on the CPU here; on a GPU it runs on the device).

    python bench/bench_loader.py --n 2048
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).parent))
from tiles import real_tiles, write_medmnist_npz

from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.views import VIEW1, augment, step_generator


class PngFolder(Dataset):
    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        a = np.asarray(Image.open(self.files[i]).convert("RGB"))
        return {"image": torch.from_numpy(a.transpose(2, 0, 1).copy()), "label": i % 2}


class InMemory(Dataset):
    def __init__(self, images: np.ndarray) -> None:
        self.images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": i % 2}


def rate(loader, n_expected: int, aug: bool) -> float:
    it = iter(loader)
    first = next(it)  # worker start-up is not throughput
    t0, n = time.perf_counter(), 0
    for step, batch in enumerate(it):
        if aug:
            augment(batch["image"], VIEW1, size=224, generator=step_generator(0, step, 0, torch.device("cpu")))
        n += len(batch["image"])
    dt = time.perf_counter() - t0
    assert n + len(first["image"]) >= 0.9 * n_expected
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = real_tiles(args.n)
        pngs = []
        (tmp / "png").mkdir()
        for i, im in enumerate(images):
            p = tmp / "png" / f"{i:06d}.png"
            Image.fromarray(im).save(p)
            pngs.append(p)
        write_medmnist_npz(str(tmp / "tiles.npz"), images)
        from topo.pipeline.job import BuildConfig, build_store
        from topo.pipeline.ray_runtime import RayResources

        build_store(
            BuildConfig(
                dataset="npz",
                data_dir=str(tmp / "tiles.npz"),
                out=tmp / "s.zarr",
                roi="none",
                resources=RayResources(num_cpus=2),
                progress=False,
            )
        )
        import ray

        ray.shutdown()
        n_train = int(0.8 * args.n)
        rows = []
        for workers in sorted({0, args.workers}):
            kw = {"batch_size": 64, "num_workers": workers}
            if workers:
                kw |= {"multiprocessing_context": "spawn", "prefetch_factor": 4}
            for aug in (False, True):
                store_ds = StoreDataset(
                    str(tmp / "s.zarr"),
                    splits="train",
                    batch_size=64,
                    seed=0,
                    rank=0,
                    world_size=1,
                    keys=("image", "label"),
                    collate=True,
                )
                r_store = rate(make_loader(store_ds, num_workers=workers), n_train, aug)
                r_png = rate(DataLoader(PngFolder(pngs[:n_train]), shuffle=True, **kw), n_train, aug)
                r_mem = rate(DataLoader(InMemory(images[:n_train]), shuffle=True, **kw), n_train, aug)
                rows.append((workers, aug, r_store, r_png, r_mem))
        print("| workers | augmentation | store img/s | PNG folder img/s | in-memory img/s | store ÷ PNG |")
        print("|---|---|---|---|---|---|")
        for workers, aug, s, p, m in rows:
            print(
                f"| {workers} | {'same batched aug (CPU)' if aug else 'none (loading only)'} | {s:,.0f} | {p:,.0f} | "
                f"{m:,.0f} | {s / p:.1f}× |"
            )

if __name__ == "__main__":
    main()
