"""build-store throughput with the Otsu ROI: 1 vs 2 Ray CPU workers, and Ray's overhead over a plain loop.

Data: ``--n`` real 224²×3 tiles cut from scikit-image's retina and immunohistochemistry images (``bench/tiles.py``),
saved once as an uncompressed ``.npz`` in MedMNIST layout and read with ``--dataset npz``. A ``.npz`` rather than a
folder of PNGs, so decoding costs a memory copy and the figures measure ROI + persistence + Zarr writes, not PNG
decoding (~2 ms per 224² image with Pillow: add that per image for a PNG folder).

Runs, each on the same file and each timed without interpreter and Ray start-up:

* ``loop``: one process, no Ray, the workers' own code per chunk (``topo.pipeline.chunk.process_chunk``: decode →
  Otsu → GUDHI → write the chunk and its manifest part), then nothing else;
* ``loop (no write)``: the same without the Zarr/Parquet writes (``chunk.prepare`` + ``topk_diagrams``);
* ``ray N``: ``topo.pipeline.job.build_store`` in a fresh process that started a local Ray with ``num_cpus=N``
  (the Ray start, including starting one warm worker process per CPU, is reported separately), including the
  driver's finalisation (manifest, checksums, fingerprint).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_build.py --n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_ACCEPT_EXPERIMENTAL_WARNINGS", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def start_warm_ray(num_cpus: int) -> float:
    """Start a local Ray with one warm worker process per CPU; returns the seconds it took."""
    import logging

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)

    @ray.remote(num_cpus=1)
    def warm() -> int:
        # Start each worker process and import what a chunk task imports (GUDHI pulls in scikit-learn: ~1.5 s),
        # as the plain loop has done before its clock starts; the sleep keeps the tasks on distinct workers.
        import topo.pipeline.chunk  # noqa: F401

        time.sleep(0.5)
        return os.getpid()

    pids = ray.get([warm.remote() for _ in range(num_cpus)])
    assert len(set(pids)) == num_cpus
    return time.perf_counter() - t0


def ray_build(npz: str, out: str, num_cpus: int, chunk_size: int) -> dict:
    """One build in this process with a fresh local Ray (called in a subprocess)."""
    import ray

    from topo.pipeline.job import BuildConfig, build_store

    t_ray = start_warm_ray(num_cpus)
    t0 = time.perf_counter()
    s = build_store(BuildConfig(dataset="npz", data_dir=npz, out=Path(out), chunk_size=chunk_size, progress=False))
    t_build = time.perf_counter() - t0
    ray.shutdown()
    assert s.complete and s.counts.get("failed", 0) == 0, s
    return {"ray_start_s": t_ray, "build_s": t_build, "n": s.num_samples, "counts": s.counts}


def plain_loop(npz: str, out: str, chunk_size: int, write: bool) -> dict:
    """The workers' per-chunk code in one process, no Ray."""
    from topo.pipeline import chunk as chunk_mod
    from topo.pipeline.persistence import FiltrationSpec, topk_diagrams
    from topo.pipeline.roi import make_roi, roi_entry
    from topo.pipeline.sources import get_source
    from topo.store_schema import Geometry, create_store

    src = get_source("npz", data_dir=npz)
    rec, info = src.records(), src.info()
    g = Geometry(len(rec), 224, 224, 3, chunk_size=chunk_size)
    spec = FiltrationSpec()
    attrs = {"dataset": info.to_json(), "persistence": spec.to_json(), "roi": {}, "provenance": {}}
    create_store(out, g, attrs, build_config={})
    roi = make_roi("otsu")
    t0 = time.perf_counter()
    for c in range(g.num_chunks):
        start, stop = g.chunk_range(c)
        payloads = list(src.payloads(rec[start:stop]))
        task = chunk_mod.ChunkTask(
            store_path=str(out),
            chunk=c,
            start=start,
            records=tuple((r.sample_id, r.source_ref, r.label, r.split) for r in rec[start:stop]),
            prefailed=(None,) * (stop - start),
            geometry=g.to_json(),
            filtration=spec.to_json(),
            split_names=info.split_names,
        )
        if write:
            chunk_mod.process_chunk(task, payloads, roi_entry("otsu"), {})
        else:
            prepared = chunk_mod.prepare(task, payloads, roi)
            topk_diagrams([p.image for p in prepared], [p.mask for p in prepared], spec)
    src.close()
    return {"build_s": time.perf_counter() - t0, "n": len(rec)}


def _sub(*args: str) -> dict:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--chunk-size", type=int, default=64)
    ap.add_argument("--workdir", default=None, help="where the .npz and stores go (default: a temporary folder)")
    ap.add_argument("--_ray", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_loop", choices=["write", "nowrite"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_npz", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._ray is not None:
        print(json.dumps(ray_build(args._npz, args._out, args._ray, args.chunk_size)))
        return
    if args._loop is not None:
        print(json.dumps(plain_loop(args._npz, args._out, args.chunk_size, args._loop == "write")))
        return

    from tiles import real_tiles, write_medmnist_npz

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        npz = str(Path(tmp) / "tiles224.npz")
        t0 = time.perf_counter()
        write_medmnist_npz(npz, real_tiles(args.n, 224, rgb=True, seed=0))
        print(f"made {args.n} tiles in {time.perf_counter() - t0:.1f} s ({os.path.getsize(npz) / 1e6:.0f} MB)")
        load = [os.getloadavg()[0]]
        runs = {}
        for name, cli in [
            ("loop (no write)", ["--_loop", "nowrite"]),
            ("loop", ["--_loop", "write"]),
            ("ray 1 CPU", ["--_ray", "1"]),
            ("ray 2 CPUs", ["--_ray", "2"]),
        ]:
            out = str(Path(tmp) / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}.zarr")
            runs[name] = _sub(*cli, "--_npz", npz, "--_out", out, "--chunk-size", str(args.chunk_size))
            load.append(os.getloadavg()[0])
            print(name, json.dumps(runs[name]), f"load {load[-1]:.1f}", flush=True)

    n = args.n
    base = runs["ray 1 CPU"]["build_s"]
    loop = runs["loop"]["build_s"]
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
        f"1-min load average {min(load):.1f}–{max(load):.1f} during the runs (shared with other processes)\n"
    )
    print("| run | s | img/s | vs ray 1 CPU | vs plain loop | Ray start s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in runs.items():
        s = r["build_s"]
        ray_start = f"{r['ray_start_s']:.1f}" if "ray_start_s" in r else "–"
        print(f"| {name} | {s:.1f} | {n / s:.0f} | {base / s:.2f}× | {s / loop:.2f}× time | {ray_start} |")


if __name__ == "__main__":
    main()
