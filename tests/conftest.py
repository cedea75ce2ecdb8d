"""Shared fixtures: one real local Ray for the whole session, real stores built once from shipped data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_ACCEPT_EXPERIMENTAL_WARNINGS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray started once for the test session (2 CPUs, no dashboard)."""
    import logging

    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "breastmnist.npz").exists():
        pytest.skip(f"shared data not found beside the repository ({SHARED_DATA})")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_store(ray_session, tmp_path_factory) -> Path:
    """A finished store built once per session from the embedded BreastMNIST (780 real images, Otsu ROI)."""
    from topo.pipeline.job import BuildConfig, build_store

    out = tmp_path_factory.mktemp("stores") / "demo.zarr"
    summary = build_store(BuildConfig(dataset="demo", out=out, progress=False))
    assert summary.complete
    return out


@pytest.fixture(scope="session")
def calibrated_store(small_store, tmp_path_factory) -> Path:
    """A copy of ``small_store`` with a small real calibration (for the topology branch of the trainer)."""
    import shutil

    from topo.pipeline.calibrate import run_calibration

    out = tmp_path_factory.mktemp("calibrated") / "demo.zarr"
    shutil.copytree(small_store, out)
    run_calibration(out, samples=24, grid=(0.05, 0.15, 0.3, 0.6, 1.0), seed=0, progress=False, plot=False)
    return out
