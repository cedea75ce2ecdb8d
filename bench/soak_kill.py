"""Soak test: SIGKILL ``topo build-store`` at random moments (creation, compute, finalise, anywhere), resume, compare.

Each trial starts ``topo build-store --overwrite`` in its own session, kills its whole process group at a moment
drawn for one of four phases, waits until every process of that session is gone, then re-runs the same command
without ``--overwrite`` until it exits 0 (a resumed run may itself be killed again in later trials; here it is
not). The finished store must equal a reference built once without interruption: every array byte for byte,
manifest, checksum table, fingerprint and root digest, and ``verify_store`` must pass.

Phases (the moment the kill is aimed at):

* ``create``: as soon as the store's temp folder or root ``zarr.json`` appears (each trial starts with no store),
  plus 0–30 ms;
* ``compute``: once the first chunk is recorded done, plus 0–300 ms;
* ``finalise``: once every chunk is recorded done (the driver is writing manifest, checksums, seal), plus 0–50 ms;
* ``anywhere``: uniform over the reference run's wall time (Ray start included).

Usage::

    OMP_NUM_THREADS=1 python bench/soak_kill.py --trials 20 --seed 0 --images 64 --chunk 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOPO = Path(sys.executable).with_name("topo")
PHASES = ("create", "compute", "finalise", "anywhere")


def make_dataset(root: Path, n: int) -> Path:
    """``n`` real BreastMNIST images as PNGs in class folders."""
    import numpy as np
    from PIL import Image

    from topo.pipeline.sources import demo_path

    with np.load(demo_path(), allow_pickle=False) as z:
        images, labels = z["train_images"][:n], z["train_labels"][:n].ravel()
    for i, (im, lab) in enumerate(zip(images, labels, strict=True)):
        d = root / f"class{int(lab)}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"{i:04d}.png")
    return root


def _session_alive(sid: int) -> list[int]:
    alive = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(d.name))
    return alive


def wait_session_gone(sid: int, timeout: float = 30.0) -> float:
    """Seconds until no process of session ``sid`` is left (survivors are killed after ``timeout``)."""
    t0 = time.monotonic()
    while (alive := _session_alive(sid)) and time.monotonic() - t0 < timeout:
        time.sleep(0.02)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return time.monotonic() - t0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_CLIENT_MODE")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"})
    return env


def _parts(out: Path) -> int:
    from topo.store_schema import StoreFiles

    d = out / StoreFiles.CHUNK_PARTS
    return len(list(d.glob("*[0-9].parquet"))) if d.is_dir() else 0


def _trigger(phase: str, out: Path, n_chunks: int, t_ref: float, rng: random.Random):
    """A condition (called in a poll loop) and the extra delay once it holds."""
    from topo.store_schema.creation import creating_path

    if phase == "create":
        return (lambda: creating_path(out).exists() or (out / "zarr.json").exists()), rng.uniform(0, 0.03)
    if phase == "compute":
        return (lambda: _parts(out) >= 1), rng.uniform(0, 0.3)
    if phase == "finalise":
        return (lambda: _parts(out) >= n_chunks), rng.uniform(0, 0.05)
    start, at = time.monotonic(), rng.uniform(0, t_ref)
    return (lambda: time.monotonic() - start >= at), 0.0


def run_killed(cmd: list[str], log: Path, cond, delay: float, timeout: float = 300) -> str:
    """Run ``cmd``; kill its process group once ``cond()`` holds plus ``delay``. Returns what happened."""
    with log.open("wb") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while p.poll() is None and not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{cmd}: trigger never held")
            time.sleep(0.001)
        if p.poll() is None:
            time.sleep(delay)
        if p.poll() is not None:
            return "finished" if p.returncode == 0 else f"exit {p.returncode}"
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        return "killed"
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        wait_session_gone(p.pid)


def run_to_end(cmd: list[str], timeout: float = 600) -> tuple[int, str]:
    p = subprocess.run(
        cmd, capture_output=True, text=True, env=_env(), timeout=timeout, start_new_session=True, check=False
    )
    return p.returncode, p.stdout + p.stderr


def same_store(a: Path, b: Path) -> list[str]:
    """Differences between two finished stores (empty if identical in content)."""
    from topo.store_schema import ARRAYS, StoreFiles, open_store
    from topo.store_schema.verify import verify_store

    x, y = open_store(a), open_store(b)
    diff = [f"array {n}" for n in ARRAYS if x.array(n)[:].tobytes() != y.array(n)[:].tobytes()]
    if not x.manifest().equals(y.manifest()):
        diff.append("manifest")
    if not x.read_table(StoreFiles.CHECKSUMS).equals(y.read_table(StoreFiles.CHECKSUMS)):
        diff.append("checksums")
    if x.fingerprint != y.fingerprint:
        diff.append("fingerprint")
    report = verify_store(a)
    diff += [f"verify: {p}" for p in report.problems]
    return diff


def soak(trials: int, seed: int, images: int, chunk: int, work: Path, phases=PHASES) -> list[dict]:
    data = make_dataset(work / "data", images)
    base = [
        str(TOPO),
        "build-store",
        "--dataset",
        "folder",
        "--data-dir",
        str(data),
        "--chunk-size",
        str(chunk),
        "--num-cpus",
        "2",
        "--no-progress",
    ]
    ref = work / "reference.zarr"
    t0 = time.monotonic()
    rc, text = run_to_end([*base, "--out", str(ref)])
    t_ref = time.monotonic() - t0
    if rc != 0:
        raise SystemExit(f"reference build failed: {text[-2000:]}")
    n_chunks = -(-images // chunk)
    rng = random.Random(seed)
    out = work / "soak.zarr"
    results = []
    for i in range(trials):
        phase = phases[i % len(phases)]
        # Start each trial from nothing: a finished store left by the previous trial would fire the "create"
        # trigger at once (its zarr.json exists) and the kill would land before the store is even opened.
        shutil.rmtree(out, ignore_errors=True)
        cond, delay = _trigger(phase, out, n_chunks, t_ref, rng)
        t = time.monotonic()
        what = run_killed([*base, "--out", str(out), "--overwrite"], work / f"trial{i}.log", cond, delay)
        rc, text = run_to_end([*base, "--out", str(out)])
        diff = ["resume failed: " + text[-500:]] if rc != 0 else same_store(out, ref)
        results.append(
            {
                "trial": i,
                "phase": phase,
                "kill": what,
                "identical": not diff,
                "problems": diff,
                "seconds": round(time.monotonic() - t, 1),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated phases to cycle through")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soak_kill_"))
    t0 = time.monotonic()
    try:
        res = soak(args.trials, args.seed, args.images, args.chunk, work, tuple(args.phases.split(",")))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    killed = [r for r in res if r["kill"] == "killed"]
    ok = sum(r["identical"] for r in res)
    by_phase = {p: sum(r["kill"] == "killed" for r in res if r["phase"] == p) for p in PHASES}
    print(
        f"{ok}/{len(res)} resumed stores identical to the reference; {len(killed)} runs actually killed "
        f"(by phase: {by_phase}); {time.monotonic() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
