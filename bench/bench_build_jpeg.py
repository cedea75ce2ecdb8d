"""End-to-end ``build-store --dataset isic2019`` on full-size dermoscopy JPEGs: img/s with JPEG draft on and off.

The shipped ISIC sample is 640 px; the real archive is 1–1.7 MP. So the first ``--n`` sample images are upscaled
(bicubic) to 1504×1129 and written as JPEG q=90 files in the ISIC 2019 layout, with their ground-truth rows. Then,
in the same run and on the same files:

* ``plain decode``: one process, Pillow full decode + convert + resize to the store size: the machine's yardstick;
* one build per variant, each in a fresh process with a fresh local Ray of ``--num-cpus`` CPUs, the workers
  warmed first; the build's own time is reported without Ray's start-up (which is reported on its own, once).

Variants: ``draft`` (this checkout, the default), ``no-draft`` (``--no-jpeg-draft``), and ``before`` when
``--before PATH`` names a staging folder whose ``topo`` package is an older checkout (run with it on
``PYTHONPATH``): the code before dermoscopy Otsu and draft decode, i.e. what the speed target is relative to.

    OMP_NUM_THREADS=1 python bench/bench_build_jpeg.py ../shared/data/isic2019_sample --n 120 --work /tmp/bj
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_ACCEPT_EXPERIMENTAL_WARNINGS", "1")

FULL_SIZE = (1504, 1129)


def write_full_size(sample: Path, out: Path, n: int) -> list[Path]:
    """The first ``n`` sample images upscaled to 1504×1129 JPEG q=90 in the ISIC 2019 layout."""
    import cv2
    import numpy as np
    from PIL import Image

    images = out / "ISIC_2019_Training_Input"
    images.mkdir(parents=True, exist_ok=True)
    files = sorted((sample / "ISIC_2019_Training_Input").glob("*.jpg"))[:n]
    for f in files:
        target = images / f.name
        if not target.exists():
            big = cv2.resize(np.asarray(Image.open(f).convert("RGB")), FULL_SIZE, interpolation=cv2.INTER_CUBIC)
            buf = io.BytesIO()
            Image.fromarray(big).save(buf, format="JPEG", quality=90)
            target.write_bytes(buf.getvalue())
    keep = {f.stem for f in files}
    for name in ("ISIC_2019_Training_GroundTruth.csv", "ISIC_2019_Training_Metadata.csv"):
        src = sample / name
        if src.exists():
            with open(src, newline="") as fin, open(out / name, "w", newline="") as fout:
                rows = list(csv.reader(fin))
                w = csv.writer(fout)
                w.writerow(rows[0])
                w.writerows(r for r in rows[1:] if r and r[0] in keep)
    return [images / f.name for f in files]


def plain_decode(files: list[Path], size: int) -> float:
    """img/s of a plain single-process full decode + resize of the same files."""
    from PIL import Image

    t0 = time.perf_counter()
    for f in files:
        Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)
    return len(files) / (time.perf_counter() - t0)


def one_build(data: str, out: str, num_cpus: int, size: int, draft: bool) -> dict:
    """One build in this process: a fresh Ray (timed apart, workers warmed), then build_store (timed)."""
    import shutil

    import ray
    from bench_build import start_warm_ray

    from topo.pipeline.job import BuildConfig, build_store

    ray_s = start_warm_ray(num_cpus)
    shutil.rmtree(out, ignore_errors=True)
    kw = {} if draft else {"jpeg_draft": False}
    t0 = time.perf_counter()
    s = build_store(
        BuildConfig(dataset="isic2019", data_dir=data, out=Path(out), image_size=size, progress=False, **kw)
    )
    build_s = time.perf_counter() - t0
    ray.shutdown()
    assert s.complete and s.counts.get("failed", 0) == 0, s
    return {"ray_start_s": ray_s, "build_s": build_s, "n": s.num_samples, "counts": s.counts}


def _sub(pythonpath: str | None, *args: str) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    # Run outside the checkout: its topo/ folder on sys.path[0] would shadow the older package.
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False)
    if res.returncode != 0:
        raise SystemExit(f"build failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sample", type=Path, nargs="?")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("bench-build-jpeg"))
    ap.add_argument("--before", default=None, help="staging folder whose topo package is the older code")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--_one", nargs=3, metavar=("DATA", "OUT", "DRAFT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._one:
        data, out, draft = a._one
        print(json.dumps(one_build(data, out, a.num_cpus, a.size, draft == "1")))
        return
    data = a.work / "isic_full_size"
    files = write_full_size(a.sample, data, a.n)
    variants = [("draft", None, "1"), ("no-draft", None, "0")] + ([("before", a.before, "1")] if a.before else [])
    rows: dict[str, list[dict]] = {}
    yard: list[float] = []
    for _ in range(a.repeats):  # interleaved: a shared machine's noise hits every variant alike
        yard.append(plain_decode(files, a.size))
        for name, path, draft in variants:
            out = str(a.work / f"{name}.zarr")
            r = _sub(path, "--_one", str(data), out, draft, "--num-cpus", str(a.num_cpus), "--size", str(a.size))
            rows.setdefault(name, []).append(r)
            print(name, json.dumps(r), flush=True)
    plain = max(yard)
    print(
        f"\n{len(files)} JPEGs {FULL_SIZE[0]}x{FULL_SIZE[1]} -> {a.size}², {a.num_cpus} Ray CPUs, best of {a.repeats}"
    )
    print(f"plain single-process full decode + resize: {plain:.1f} img/s")
    print("variant     build img/s  × plain decode  Ray start s")
    for name, rs in rows.items():
        best = min(rs, key=lambda r: r["build_s"])
        rate = best["n"] / best["build_s"]
        print(f"{name:<10} {rate:12.1f}  {rate / plain:14.2f}  {best['ray_start_s']:11.1f}")


if __name__ == "__main__":
    main()
