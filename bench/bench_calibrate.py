"""Benchmark: calibration of 8 operators × 8 intensities × 256 images on 2 Ray workers.

Usage::

    python bench/bench_calibrate.py STORE [--samples 256] [--workers 2] [--block-size 16] [--in-place]

The store is copied to a temporary directory first (calibration writes into the store; a benchmark must not
replace a real calibration), unless ``--in-place``. Ray is started before the clock starts, so the wall time
is the job itself: sampling, Ray tasks, Parquet parts, tables, ranges and the plot.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from topo.pipeline.augment import DEFAULT_COMBINATIONS
from topo.pipeline.calibrate import DEFAULT_GRID, run_calibration
from topo.pipeline.ray_runtime import RayResources, ensure_ray
from topo.store_schema import open_store

SINGLES = [c for c in DEFAULT_COMBINATIONS if len(c) == 1]  # the 8 single operators


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path, help="a finished topo store (local directory)")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2, help="Ray CPUs (one task per CPU)")
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-place", action="store_true", help="calibrate STORE itself instead of a copy")
    args = ap.parse_args()

    import ray

    st = open_store(args.store)
    g = st.geometry
    print(f"store      {args.store} ({g.num_samples} samples, {g.height}x{g.width}x{g.channels}, k0={g.k0}, k1={g.k1})")
    print(
        f"machine    {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )

    tmp = None
    target = args.store
    if not args.in_place:
        tmp = Path(tempfile.mkdtemp(prefix="bench_calibrate_"))
        target = tmp / args.store.name
        shutil.copytree(args.store, target, ignore=shutil.ignore_patterns("calibration"))
    try:
        t = time.perf_counter()
        ensure_ray(RayResources(num_cpus=args.workers))
        print(f"ray start  {time.perf_counter() - t:.1f} s ({args.workers} CPUs)")
        res = run_calibration(
            target,
            combinations=SINGLES,
            grid=DEFAULT_GRID,
            samples=args.samples,
            seed=args.seed,
            block_size=args.block_size,
            progress=True,
            overwrite=True,
            resources=RayResources(num_cpus=args.workers),
        )
        ray.shutdown()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"job        {res.num_images} images × {len(SINGLES)} operators × {len(DEFAULT_GRID)} intensities "
        f"= {res.evaluations} δ evaluations in {res.blocks_total} blocks"
    )
    print(f"wall time  {res.wall_s:.2f} s")
    print(
        f"throughput {res.evaluations_per_s:,.0f} δ-evaluations/s "
        f"({1e3 * args.workers / max(res.evaluations_per_s, 1e-9):.2f} ms per evaluation per worker)"
    )


if __name__ == "__main__":
    main()
