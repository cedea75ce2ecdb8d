"""Shared fixtures: one real local Ray for the whole session, real stores built once from shipped data, generated
datasets in every layout topo reads (tests/fixtures/datasets.py), one tiny SAM checkpoint.

Nothing here reads outside the repository except ``shared_data``, the opt-in real data beside it: tests that use it
are marked ``shared_data`` (automatically, if they forgot), are left out unless ``-m`` names ``shared_data``
(``make test-shared``), and fail, never skip, when the data is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures import datasets, skip_guard

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_ACCEPT_EXPERIMENTAL_WARNINGS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    skip_guard.install(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses ``shared_data``; leave them out unless the ``-m`` expression names the marker.

    tryfirst: the marker must be on the item before pytest's own ``-m`` selection looks at it.
    """
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()) and item.get_closest_marker("shared_data") is None:
            item.add_marker(pytest.mark.shared_data)
    if "shared_data" in (config.getoption("markexpr") or ""):
        return
    keep = [item for item in items if item.get_closest_marker("shared_data") is None]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("shared_data")])
        items[:] = keep


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
    """The real data folder beside the repository (opt-in: ``-m shared_data``). Missing data is a failure."""
    if not (SHARED_DATA / "breastmnist.npz").exists():
        pytest.fail(
            f"the shared_data tests need the real data beside the repository ({SHARED_DATA}); "
            "run `make test` (which leaves them out) where it is absent",
            pytrace=False,
        )
    return SHARED_DATA


# --------------------------------------------------------------------------------------------- generated data
@pytest.fixture(scope="session")
def medmnist_dir(tmp_path_factory) -> Path:
    """Generated twin of the shared data folder (same file names), plus other sizes and channel counts:
    breastmnist.npz (the embedded real demo), pneumoniamnist.npz, mednist_64_small.npz, pathmnist_64.npz (RGB),
    dermamnist_128.npz (RGB). See :func:`fixtures.datasets.write_medmnist_dir`."""
    return datasets.write_medmnist_dir(tmp_path_factory.mktemp("medmnist"))


@pytest.fixture(scope="session", params=["generated", pytest.param("shared", marks=pytest.mark.shared_data)])
def npz_data(request) -> Path:
    """A MedMNIST-layout folder: the generated one always, the real one beside the repository under
    ``-m shared_data``. Both hold breastmnist.npz, pneumoniamnist.npz and mednist_64_small.npz."""
    return request.getfixturevalue("medmnist_dir" if request.param == "generated" else "shared_data")


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory) -> dict[str, Path]:
    """Class folders (benign/, malignant/; 6 RGB images each) in PNG, JPEG and TIFF, keyed by format."""
    root = tmp_path_factory.mktemp("folders")
    return {fmt: datasets.write_image_folder(root / fmt, fmt, seed=i) for i, fmt in enumerate(("png", "jpeg", "tiff"))}


@pytest.fixture(scope="session")
def isic_dir(tmp_path_factory) -> Path:
    """ISIC 2019 training layout: 24 generated dermoscopy-like JPEGs (vignette, hair), one-hot ground truth,
    metadata with lesion ids (two images per lesion)."""
    return datasets.write_isic2019(tmp_path_factory.mktemp("isic2019"))


@pytest.fixture(scope="session")
def kvasir_dir(tmp_path_factory) -> Path:
    """Kvasir v2 layout (the archive's nested ``kvasir-dataset/kvasir-dataset``), 3 JPEGs per class."""
    return datasets.write_kvasir(tmp_path_factory.mktemp("kvasir"))


@pytest.fixture(scope="session")
def tiny_sam_checkpoint(tmp_path_factory) -> Path:
    """segment-anything's own builder, one block of width 32, seeded random weights, saved once per session."""
    from topo.pipeline.roi.sam import save_tiny_test_checkpoint

    return save_tiny_test_checkpoint(tmp_path_factory.mktemp("sam") / "sam_tiny_random.pth")


# --------------------------------------------------------------------------------------------- stores
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
