"""Loader throughput: a topo store vs a folder of PNG files vs an in-memory array (224²×3 images).

Each source is measured in the configurations a user would try (in the training process, with reading threads,
with two spawned DataLoader workers), all yielding the same collated uint8 batches of 64, and, with ``--aug``, the
same batched augmentation (``topo.trainer.visual_views.augment``, run on the CPU here; on a GPU it runs on the device).

    python bench/bench_loader.py --n 2048 [--codec lz4] [--aug]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset

sys.path.insert(0, str(Path(__file__).parent))
from tiles import real_tiles, write_medmnist_npz

from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.visual_views import VIEW1, augment, step_generator

BATCH = 64


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


class PngFolder(Dataset):
    """One PNG per sample, decoded by PIL, collated by the DataLoader (the usual torchvision-style folder)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.from_numpy(_png(self.files[i]).transpose(2, 0, 1).copy()), "label": i % 2}


class ThreadedPngBatches(IterableDataset):
    """Shuffled PNG batches decoded on a thread pool (PIL releases the GIL in decoding): the fair in-process rival."""

    def __init__(self, files: list[Path], threads: int) -> None:
        self.files, self.threads = files, threads

    def __iter__(self):
        order = np.random.default_rng(0).permutation(len(self.files))
        batches = [order[i : i + BATCH] for i in range(0, len(order) - BATCH + 1, BATCH)]
        with ThreadPoolExecutor(self.threads) as pool:
            pending = [pool.submit(lambda b=b: np.stack([_png(self.files[i]) for i in b])) for b in batches[:4]]
            for k in range(len(batches)):
                if k + 4 < len(batches):
                    pending.append(pool.submit(lambda b=batches[k + 4]: np.stack([_png(self.files[i]) for i in b])))
                yield {"image": torch.from_numpy(pending[k].result()).permute(0, 3, 1, 2)}
                pending[k] = None


class InMemory(Dataset):
    def __init__(self, images: np.ndarray) -> None:
        self.images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": i % 2}


def rate(loader, aug: bool) -> float:
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    t0, n = time.perf_counter(), 0
    for step, batch in enumerate(it):
        if aug:
            augment(batch["image"], VIEW1, size=224, generator=step_generator(0, step, 0, torch.device("cpu")))
        n += len(batch["image"])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--codec", default=None, help="store image codec (default: the layout's default)")
    ap.add_argument("--aug", action="store_true", help="also apply the batched augmentation on the CPU")
    ap.add_argument("--repeats", type=int, default=2, help="passes per configuration; the best is reported")
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

        extra = {"image_codec": args.codec} if args.codec else {}
        build_store(
            BuildConfig(
                dataset="npz",
                data_dir=str(tmp / "tiles.npz"),
                out=tmp / "s.zarr",
                roi="none",
                resources=RayResources(num_cpus=2),
                progress=False,
                **extra,
            )
        )
        import ray

        ray.shutdown()
        n_train = int(0.8 * args.n)
        spawn = {"multiprocessing_context": "spawn", "prefetch_factor": 4, "num_workers": args.workers}

        def store(readahead: int, workers: int) -> DataLoader:
            ds = StoreDataset(
                str(tmp / "s.zarr"),
                splits="train",
                batch_size=BATCH,
                seed=0,
                rank=0,
                world_size=1,
                keys=("image", "label"),
                collate=True,
                readahead=readahead,
                read_threads=args.threads,
            )
            return make_loader(ds, num_workers=workers)

        configs = {
            "store": {
                "in process, no read-ahead": lambda: store(0, 0),
                f"in process, read-ahead on {args.threads} threads": lambda: store(8, 0),
                f"{args.workers} spawned workers, read-ahead": lambda: store(8, args.workers),
            },
            "PNG folder": {
                "in process": lambda: DataLoader(PngFolder(pngs[:n_train]), batch_size=BATCH, shuffle=True),
                f"in process, {args.threads} decoding threads": lambda: DataLoader(
                    ThreadedPngBatches(pngs[:n_train], args.threads), batch_size=None
                ),
                f"{args.workers} spawned workers": lambda: DataLoader(
                    PngFolder(pngs[:n_train]), batch_size=BATCH, shuffle=True, **spawn
                ),
            },
            "in-memory array": {
                "in process": lambda: DataLoader(InMemory(images[:n_train]), batch_size=BATCH, shuffle=True),
                f"{args.workers} spawned workers": lambda: DataLoader(
                    InMemory(images[:n_train]), batch_size=BATCH, shuffle=True, **spawn
                ),
            },
        }
        for aug in (False, True) if args.aug else (False,):
            best: dict[str, float] = {}
            print(f"\naugmentation: {'same batched aug (CPU)' if aug else 'none (loading only)'}")
            print("| source | configuration | img/s |")
            print("|---|---|---:|")
            for source, variants in configs.items():
                for name, make in variants.items():
                    r = max(rate(make(), aug) for _ in range(args.repeats))
                    best[source] = max(best.get(source, 0.0), r)
                    print(f"| {source} | {name} | {r:,.0f} |", flush=True)
            print(f"\nbest store ÷ best PNG folder: **{best['store'] / best['PNG folder']:.1f}×**")


if __name__ == "__main__":
    main()
