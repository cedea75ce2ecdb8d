"""SIGKILL `topo build-store` at random moments, resume, and get the same store as an uninterrupted build.

The build runs as a subprocess in its own session (``start_new_session=True``), so killing its process group
takes the driver, its GCS, raylet and helper processes at once -- and nothing of the pytest process. Ray's
task workers are put in process groups of their own by the raylet, so the group kill does not reach them;
they exit by themselves once their raylet is gone (about 2 s here). The test waits for every process of the
build's session to be gone (bounded; it fails naming any survivor) before it looks at the store or resumes,
which is also what makes the "no completed chunk computed twice" check sound: a worker still finishing a chunk
after the kill would otherwise write a part behind the test's back.

"Computed twice" is measured from the completion records: a chunk's ``_build/chunks/NNNNNNN.parquet`` part is
written once, atomically, when the chunk is done, and carries no timing; so every part present after a kill
must keep its mtime through the next resumed run, and the final run must report as skipped exactly the
chunks whose parts existed before it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from topo.store_schema import ARRAYS, StoreFiles, open_store

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find processes"),
    pytest.mark.slow,  # four CLI builds, each starting its own Ray: ~40 s idle, more on a busy machine
]

TOPO = Path(sys.executable).with_name("topo")
N_IMAGES, CHUNK = 256, 16
N_CHUNKS = N_IMAGES // CHUNK
PART = re.compile(r"^\d{7}\.parquet$")


def _dataset(root: Path) -> Path:
    """256 real BreastMNIST images as PNG files in class folders (the `folder` source's layout)."""
    from PIL import Image

    from topo.pipeline.sources import demo_path

    with np.load(demo_path(), allow_pickle=False) as z:
        images, labels = z["train_images"][:N_IMAGES], z["train_labels"][:N_IMAGES].ravel()
    for i, (im, lab) in enumerate(zip(images, labels, strict=True)):
        d = root / f"class{int(lab)}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"{i:04d}.png")
    return root


def _parts(store: Path) -> dict[str, int]:
    d = store / StoreFiles.CHUNK_PARTS
    if not d.is_dir():
        return {}
    out = {}
    for p in d.iterdir():
        if PART.match(p.name):
            with contextlib.suppress(FileNotFoundError):  # the build finished and removed the folder
                out[p.name] = p.stat().st_mtime_ns
    return out


def _session_alive(sid: int) -> list[str]:
    """Live (not zombie) processes of session ``sid``, as 'pid name'."""
    alive = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        close = stat.rindex(")")
        fields = stat[close + 2 :].split()  # state, ppid, pgrp, session, ...
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(f"{d.name} {stat[stat.index('(') + 1 : close]}")
    return alive


def _wait_session_gone(sid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (alive := _session_alive(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive:
        for entry in alive:  # do not leak them into the rest of the test session
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.split()[0]), signal.SIGKILL)
        pytest.fail(f"processes of the killed build outlived it by {timeout:.0f} s: {alive}")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_CLIENT_MODE")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"})
    return env


def test_kill_and_resume_gives_the_uninterrupted_store(ray_session, tmp_path: Path) -> None:
    from topo.pipeline.job import BuildConfig, build_store
    from topo.pipeline.ray_runtime import RayResources

    data = _dataset(tmp_path / "data")
    out = tmp_path / "killed.zarr"
    cmd = [
        str(TOPO),
        "build-store",
        "--dataset",
        "folder",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--chunk-size",
        str(CHUNK),
        "--num-cpus",
        "2",
        "--no-progress",
    ]
    rng = random.Random(20240611)
    deadline = time.monotonic() + 150
    done_before: dict[str, int] = {}
    for kill in range(2):
        log = tmp_path / f"run{kill}.log"
        with log.open("wb") as f:  # a file, not a pipe: an unread pipe could block the build
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
        try:
            while not set(_parts(out)) - set(done_before):  # this run's first completed chunk
                assert p.poll() is None, f"build exited ({p.returncode}) early: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "no chunk completed in time"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            assert p.poll() is None, f"kill {kill}: the build finished before it could be killed"
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
        assert p.returncode == -signal.SIGKILL
        _wait_session_gone(p.pid)
        parts = _parts(out)
        rewritten = [n for n, t in done_before.items() if parts.get(n) != t]
        assert not rewritten, f"chunks completed before kill {kill} were written again: {rewritten}"
        assert len(parts) > len(done_before), f"run {kill} completed no chunk"
        assert len(parts) < N_CHUNKS
        assert not (out / StoreFiles.MANIFEST).exists()
        done_before = parts

    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True
    )
    try:
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
    assert p.returncode == 0, stderr[-3000:]
    _wait_session_gone(p.pid)  # a clean exit leaves nothing behind either
    m = re.search(r"chunks computed / skipped\D+(\d+) / (\d+)", stdout)
    assert m, stdout
    computed, skipped = int(m.group(1)), int(m.group(2))
    assert (computed, skipped) == (N_CHUNKS - len(done_before), len(done_before))
    assert not (out / StoreFiles.CHUNK_PARTS).exists()

    ref = tmp_path / "reference.zarr"
    s = build_store(
        BuildConfig(
            dataset="folder",
            data_dir=str(data),
            out=ref,
            chunk_size=CHUNK,
            progress=False,
            resources=RayResources(num_cpus=2),
        )
    )
    assert s.complete and s.chunks_computed == N_CHUNKS
    a, b = open_store(out), open_store(ref)
    assert a.fingerprint == b.fingerprint
    for name in ARRAYS:
        x, y = a.array(name)[:], b.array(name)[:]
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
    assert a.manifest().equals(b.manifest())
    assert a.read_table(StoreFiles.CHECKSUMS).equals(b.read_table(StoreFiles.CHECKSUMS))
    assert dict(a.attrs["build"]["counts"]) == {"ok": N_IMAGES}
