"""ROI quality flags: each check can fire, the build records them, ``--roi-suspect`` decides, old stores open."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr

from topo.pipeline.job import BuildConfig, build_store
from topo.pipeline.roi.quality import resolve_policy, roi_quality
from topo.store_schema import StoreFiles, open_store


def _skin(h=64, w=64, level=180) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.repeat(np.clip(rng.normal(level, 6, (h, w, 1)), 0, 255).astype(np.uint8), 3, axis=2)


def _disk(h, w, cy, cx, r) -> np.ndarray:
    y, x = np.ogrid[:h, :w]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def test_a_plausible_dark_lesion_is_ok():
    im = _skin()
    m = _disk(64, 64, 32, 32, 12)
    im[m] = 60
    assert roi_quality(im, m, "dark") == "ok"


def test_each_check_fires_with_its_reason():
    im = _skin()
    lesion = _disk(64, 64, 32, 32, 12)
    im[lesion] = 60
    assert "area 0.9" in roi_quality(im, ~_disk(64, 64, 0, 0, 12), "dark")
    skin_ring = ~lesion & _disk(64, 64, 32, 32, 20)
    assert "ROI brighter than surround" in roi_quality(im, skin_ring, "dark")
    assert "brighter" not in roi_quality(im, skin_ring, "auto")  # no polarity declared: no contrast check
    specks = np.zeros((64, 64), bool)
    specks[3:10, 3:10] = specks[3:10, 50:57] = specks[50:57, 3:10] = specks[50:57, 50:57] = True
    specks[29:36, 29:36] = True  # five pieces of 49 pixels, each over 1 % of the image
    assert "5 components > 3" in roi_quality(im, specks, "auto")
    specks[29:36, 29:36], specks[50:57, 50:57], specks[20, 20] = False, False, True  # 3 pieces + a speck
    assert roi_quality(im, specks, "auto") == "ok"
    frame = np.zeros((64, 64), bool)
    frame[:, :8] = frame[:8] = frame[:, -8:] = True
    assert "touches 4 borders" in roi_quality(im, frame, "auto")  # the side bands reach the bottom row


def test_the_field_of_view_disc_is_suspect():
    im = _skin(96, 96)
    outside = ~_disk(96, 96, 48, 48, 44)
    im[outside] = 3
    assert "ROI equals the field of view" in roi_quality(im, _disk(96, 96, 48, 48, 42), "auto")


def test_the_policy_is_checked_and_auto_depends_on_the_declared_polarity():
    with pytest.raises(ValueError, match="--roi-suspect must be one of auto, fallback, keep, fail, got 'drop'"):
        resolve_policy("drop", "dark")
    assert resolve_policy("auto", "dark") == "fallback" and resolve_policy("auto", "auto") == "keep"
    assert resolve_policy("fail", "auto") == "fail"


@pytest.mark.slow  # three small builds on the local Ray: ~15 s on two busy cores
def test_the_build_records_quality_and_applies_the_policy(ray_session, isic_dir, tmp_path):
    kept = {}
    for policy in ("keep", "fallback", "fail"):
        out = tmp_path / f"{policy}.zarr"
        cfg = BuildConfig(dataset="isic2019", out=out, data_dir=str(isic_dir), image_size=64, progress=False)
        cfg.roi_suspect = policy  # (auto is fallback here: ISIC declares dark lesions)
        assert build_store(cfg).complete
        st = open_store(out)
        m = st.manifest().to_pandas()
        kept[policy] = m
        assert st.attrs["roi"]["suspect"] == policy
        assert st.attrs["roi"]["params"]["polarity"] == "dark"  # ISIC declares dark lesions
        counts = st.describe()["counts"]
        assert sum(sum(v.values()) for k, v in counts.items() if k.startswith("roi_quality_")) == len(m)
    q = kept["keep"]["roi_quality"]
    assert q.notna().all() and set(q.str.split(":").str[0]) <= {"ok", "suspect"}
    suspect = q.str.startswith("suspect")
    fb, fl = kept["fallback"], kept["fail"]
    assert (fb.loc[suspect, "status"] == "fallback").all() and (fb.loc[suspect, "roi_area"] == 1.0).all()
    assert (fl.loc[suspect, "status"] == "failed").all()
    assert fl.loc[suspect, "reason"].str.startswith("suspect ROI: ").all()
    assert (kept["keep"].loc[~suspect, "status"] == fb.loc[~suspect, "status"]).all()


def test_a_store_of_schema_1_0_without_roi_quality_still_opens(small_store, tmp_path):
    import shutil

    old = tmp_path / "old.zarr"
    shutil.copytree(small_store, old)
    t = pq.read_table(old / StoreFiles.MANIFEST)
    pq.write_table(t.drop(["roi_quality"]), old / StoreFiles.MANIFEST)
    g = zarr.open_group(old, mode="r+")
    attrs = dict(g.attrs["topo"])
    attrs["schema_version"] = "1.0.0"
    attrs.pop("integrity", None)  # a store of 1.0 was never sealed with a root digest
    g.attrs["topo"] = json.loads(json.dumps(attrs))
    st = open_store(old)
    assert st.problems() == []
    m = st.manifest()
    assert m.column("roi_quality").null_count == m.num_rows
    assert not any(k.startswith("roi_quality_") for k in st.describe()["counts"])
