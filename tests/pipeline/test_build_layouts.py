"""``build-store`` from every on-disk layout topo reads, on data the test session generates (no real data needed):
class folders of PNG, JPEG and TIFF, the ISIC 2019 and Kvasir layouts, MedMNIST ``.npz`` files in RGB at 64² and
128². Each build runs on the shared real Ray and must store every record, with the source's labels and splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from topo.pipeline.job import BuildConfig, build_store
from topo.pipeline.sources import get_source
from topo.store_schema import open_store
from topo.store_schema.verify import verify_store

# (dataset name, how to find its --data-dir from the session fixtures, expected channels)
LAYOUTS = {
    "folder-png": ("folder", lambda f: f["image_folders"]["png"], 3),
    "folder-jpeg": ("folder", lambda f: f["image_folders"]["jpeg"], 3),
    "folder-tiff": ("folder", lambda f: f["image_folders"]["tiff"], 3),
    "isic2019": ("isic2019", lambda f: f["isic_dir"], 3),
    "kvasir": ("kvasir", lambda f: f["kvasir_dir"], 3),
    "npz-rgb-64": ("npz", lambda f: f["medmnist_dir"] / "pathmnist_64.npz", 3),
    "npz-rgb-128": ("npz", lambda f: f["medmnist_dir"] / "dermamnist_128.npz", 3),
}


@pytest.fixture(scope="module")
def generated(image_folders, isic_dir, kvasir_dir, medmnist_dir) -> dict:
    return {
        "image_folders": image_folders,
        "isic_dir": isic_dir,
        "kvasir_dir": kvasir_dir,
        "medmnist_dir": medmnist_dir,
    }


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_builds_a_complete_store(ray_session, generated, tmp_path: Path, layout: str) -> None:
    dataset, where, channels = LAYOUTS[layout]
    data_dir = where(generated)
    src = get_source(dataset, data_dir=data_dir)
    records = src.records()
    assert len(records) >= 12, "the generated layout is too small to be a test"

    out = tmp_path / f"{layout}.zarr"
    s = build_store(
        BuildConfig(dataset=dataset, data_dir=str(data_dir), out=out, image_size=32, chunk_size=16, progress=False)
    )
    assert s.complete and s.num_samples == len(records), s
    assert s.counts.get("failed", 0) == 0, s.failures

    st = open_store(out)
    st.validate()
    assert verify_store(out).ok
    g = st.geometry
    assert (g.height, g.width, g.channels) == (32, 32, channels)
    manifest = st.manifest().to_pydict()
    assert manifest["sample_id"] == [r.sample_id for r in records]
    assert manifest["label"] == [r.label for r in records]
    assert manifest["split"] == [r.split for r in records]
    # The images are not blank: an Otsu ROI was found and the diagrams hold at least one H0 class each.
    assert (st.array("roi_masks")[:].reshape(len(records), -1).sum(axis=1) > 0).all()
    assert (st.array("n_h0")[:] >= 1).all()
