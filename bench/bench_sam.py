"""SAM ROI backend throughput (images/s) in ``box`` and ``auto`` mode, through ``topo.pipeline.roi.sam.SamRoi``.

Without ``--checkpoint`` it builds segment-anything's tiny random-weight model (``vit_tiny_test``: one encoder
block of width 32) and saves it to a temporary file, so it runs on a CPU in seconds per image; the figures then say
what the pipeline around SAM costs, not what a real SAM costs. With a real checkpoint on a GPU the same script gives
the production figures:

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_sam.py                       # tiny model, CPU
    .venv/bin/python bench/bench_sam.py --model vit_h --checkpoint sam_vit_h_4b8939.pth --device cuda --n 64

Images are real 224² RGB tiles (scikit-image's retina and immunohistochemistry images, ``bench/tiles.py``); SAM
resizes every image to 1024 on the long side, so the input size barely matters. The first image of each mode is a
warm-up and is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from tiles import real_tiles  # noqa: E402

from topo.pipeline.roi.sam import SAM_MODELS, SamRoi, save_tiny_test_checkpoint  # noqa: E402


def tiny_checkpoint(folder: Path) -> Path:
    return save_tiny_test_checkpoint(folder / "sam_tiny_random.pth")


def measure(roi: SamRoi, images: np.ndarray) -> tuple[float, int, int]:
    """(seconds for all but the first image, fallbacks, images timed)."""
    roi.checked([images[0]])  # warm-up: allocations, kernels, autotuning
    if roi.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = roi.checked(list(images[1:]))
    if roi.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, sum(r.fallback_reason is not None for r in res), len(images) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="vit_tiny_test", choices=SAM_MODELS)
    ap.add_argument("--checkpoint", default=None, help="SAM weights; default: a tiny random-weight model (CPU tests)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--modes", default="box,auto")
    ap.add_argument("--n", type=int, default=17, help="box-mode images (the first is a warm-up)")
    ap.add_argument("--n-auto", type=int, default=5, help="auto-mode images (the first is a warm-up)")
    ap.add_argument("--batch-size", type=int, default=8, help="box mode: images per encoder batch")
    ap.add_argument("--points-per-side", type=int, default=4, help="auto mode grid (the paper's default is 32)")
    args = ap.parse_args()
    if args.checkpoint is None and args.model != "vit_tiny_test":
        ap.error("--checkpoint is required for a real SAM model")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or tiny_checkpoint(Path(tmp))
        for mode in args.modes.split(","):
            n = args.n if mode == "box" else args.n_auto
            images = real_tiles(n, 224, rgb=True, seed=0)
            extra = {"points_per_side": args.points_per_side} if mode == "auto" else {}
            roi = SamRoi(
                model=args.model, checkpoint=ckpt, mode=mode, device=args.device, batch_size=args.batch_size, **extra
            )
            seconds, fallbacks, timed = measure(roi, images)
            setting = (
                f"batch {args.batch_size}" if mode == "box" else f"{args.points_per_side}×{args.points_per_side} grid"
            )
            rows.append((mode, setting, timed, seconds, fallbacks))
            device = str(roi.device)

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "no GPU"
    print(
        f"\nmodel {args.model} ({'random weights' if args.checkpoint is None else Path(args.checkpoint).name}), "
        f"device {device} ({gpu}); {platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| mode | setting | images timed | s/image | images/s | whole-image fallbacks |")
    print("|---|---|---:|---:|---:|---:|")
    for mode, setting, timed, seconds, fallbacks in rows:
        print(f"| {mode} | {setting} | {timed} | {seconds / timed:.2f} | {timed / seconds:.2f} | {fallbacks} |")


if __name__ == "__main__":
    main()
