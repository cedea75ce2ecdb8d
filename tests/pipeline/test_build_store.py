"""End-to-end ``build-store`` on real images with a real Ray, Zarr on disk and GUDHI: content, resume, failures,
refusals and fingerprints."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from ph_reference import reference_topk, skimage_tiles
from PIL import Image
from typer.testing import CliRunner

from topo.pipeline import chunk as chunk_mod
from topo.pipeline.job import BuildConfig, build_store
from topo.pipeline.persistence import FiltrationSpec
from topo.pipeline.roi import OtsuRoi, roi_entry
from topo.pipeline.sources import ReadFailure, get_source
from topo.store_schema import (
    ARRAYS,
    Geometry,
    Status,
    StoreError,
    StoreFiles,
    StoreIncompleteError,
    create_store,
    open_store,
)
from topo.store_schema.verify import verify_store


def _cfg(data_dir: Path, out: Path, **kw) -> BuildConfig:
    # data_dir: the session's generated MedMNIST folder, whose breastmnist.npz is the embedded real demo.
    return BuildConfig(dataset="breastmnist", data_dir=str(data_dir), out=out, progress=False, **kw)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    st = open_store(path)
    return {name: st.array(name)[:] for name in ARRAYS}


def _chunk_files(store: Path, chunk: int) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file of one chunk of every array: a rewrite replaces the file."""
    out = {}
    for name in ARRAYS:
        for p in [store / name / "c" / str(chunk), *(store / name / "c" / str(chunk)).rglob("*")]:
            if p.is_file():
                s = p.stat()
                out[str(p.relative_to(store))] = (s.st_ino, s.st_mtime_ns)
    assert out, f"no files for chunk {chunk}"
    return out


@pytest.fixture(scope="module")
def full_store(ray_session, medmnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "breast.zarr"
    summary = build_store(_cfg(medmnist_dir, out))
    return out, summary


# --------------------------------------------------------------------------------------------- content
def test_full_build_is_complete_and_valid(full_store):
    out, s = full_store
    assert s.complete and s.num_samples == 780 and s.chunks_computed == 13 and s.chunks_skipped == 0
    assert sum(s.counts.values()) == 780 and s.counts.get("failed", 0) == 0
    st = open_store(out)
    st.validate()
    assert verify_store(out).ok
    assert st.fingerprint == s.fingerprint
    assert st.attrs["roi"] == {"backend": "otsu", "params": OtsuRoi().params()}
    assert st.persistence_spec == FiltrationSpec().to_json()
    assert st.attrs["dataset"]["license"] == "CC BY 4.0"
    assert not (out / StoreFiles.CHUNK_PARTS).exists()


def test_store_holds_the_source_images_labels_and_splits(full_store, medmnist_dir):
    out, _ = full_store
    st = open_store(out)
    src = get_source("breastmnist", data_dir=medmnist_dir)
    rec = src.records()
    images = np.stack(list(src.payloads(rec)))
    np.testing.assert_array_equal(st.array("images")[:][..., 0], images)
    np.testing.assert_array_equal(st.array("labels")[:], [r.label for r in rec])
    np.testing.assert_array_equal(st.array("splits")[:], [st.split_names.index(r.split) for r in rec])
    m = st.manifest().to_pydict()
    assert m["sample_id"] == [r.sample_id for r in rec] and m["source_ref"] == [r.source_ref for r in rec]
    assert set(m["status"]) <= {"ok", "fallback"}
    np.testing.assert_array_equal(m["n_h0"], st.array("n_h0")[:])
    np.testing.assert_allclose(m["roi_area"], st.array("roi_masks")[:].mean(axis=(1, 2)), rtol=1e-6)


def test_stored_masks_are_the_otsu_masks_of_the_source(full_store):
    out, _ = full_store
    st = open_store(out)
    idx = np.arange(0, 780, 13)
    images, masks = st.array("images").oindex[idx], st.array("roi_masks").oindex[idx]
    for m, r in zip(masks, OtsuRoi().checked(list(images)), strict=True):
        np.testing.assert_array_equal(m, r.mask)


def test_stored_diagrams_equal_gudhis_reference(full_store):
    out, _ = full_store
    st = open_store(out)
    idx = np.arange(3, 780, 11)  # 71 samples spread over all 13 chunks
    images, masks = st.array("images").oindex[idx], st.array("roi_masks").oindex[idx]
    pd0, pd1 = st.array("pd_h0").oindex[idx], st.array("pd_h1").oindex[idx]
    n0, n1 = st.array("n_h0").oindex[idx], st.array("n_h1").oindex[idx]
    assert (n1 > 0).mean() > 0.5 and (n0 > 1).mean() > 0.5  # not vacuous
    for j in range(len(idx)):
        h0, c0, h1, c1 = reference_topk(images[j], masks[j])
        assert (n0[j], n1[j]) == (c0, c1), f"sample {idx[j]}"
        np.testing.assert_array_equal(pd0[j], h0, err_msg=f"sample {idx[j]} H0")
        np.testing.assert_array_equal(pd1[j], h1, err_msg=f"sample {idx[j]} H1")


def test_rerunning_a_complete_build_does_nothing(full_store, medmnist_dir):
    out, first = full_store
    before = {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    again = build_store(_cfg(medmnist_dir, out))
    assert again.complete and again.chunks_computed == 0 and again.chunks_skipped == 13
    assert again.fingerprint == first.fingerprint
    after = {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_another_configuration_at_the_same_out_is_refused(full_store, medmnist_dir):
    out, _ = full_store
    with pytest.raises(StoreError, match=r"built with another configuration \(differs in: roi\).*--overwrite"):
        build_store(_cfg(medmnist_dir, out, roi="none"))
    with pytest.raises(StoreError, match=r"differs in: chunk_size"):
        build_store(_cfg(medmnist_dir, out, chunk_size=32))
    with pytest.raises(StoreError, match=r"differs in: persistence"):
        build_store(_cfg(medmnist_dir, out, filtration=FiltrationSpec(direction="superlevel")))
    assert open_store(out).problems() == []  # the refused builds touched nothing


# --------------------------------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def reference_320(ray_session, medmnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    s = build_store(_cfg(medmnist_dir, out, limit=320))
    assert s.complete and s.chunks_computed == 5
    return out, s


def test_interrupted_build_resumes_to_identical_arrays(reference_320, medmnist_dir, tmp_path):
    ref, ref_summary = reference_320
    out = tmp_path / "resumed.zarr"
    part = build_store(_cfg(medmnist_dir, out, limit=320, max_chunks=2))
    assert not part.complete and part.chunks_computed == 2 and part.chunks_skipped == 0
    assert part.fingerprint is None
    st = open_store(out)
    assert st.problems() == ["build incomplete (re-run the same build-store command to resume)"]
    with pytest.raises(StoreIncompleteError):
        st.validate()
    report = verify_store(out)
    assert report.problems == st.problems()  # incomplete, not corrupt: no checksum or layout complaint
    status = st.array("status")[:]
    assert (status[:128] != Status.UNWRITTEN).all() and (status[128:] == Status.UNWRITTEN).all()
    done0, done1 = _chunk_files(out, 0), _chunk_files(out, 1)

    more = build_store(_cfg(medmnist_dir, out, limit=320, max_chunks=1))
    assert not more.complete and (more.chunks_computed, more.chunks_skipped) == (1, 2)
    rest = build_store(_cfg(medmnist_dir, out, limit=320))
    assert rest.complete and (rest.chunks_computed, rest.chunks_skipped) == (2, 3)
    assert _chunk_files(out, 0) == done0 and _chunk_files(out, 1) == done1  # not recomputed, not rewritten

    a, b = _arrays(ref), _arrays(out)
    for name in ARRAYS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert pq.read_table(ref / StoreFiles.MANIFEST).equals(pq.read_table(out / StoreFiles.MANIFEST))
    assert pq.read_table(ref / StoreFiles.CHECKSUMS).equals(pq.read_table(out / StoreFiles.CHECKSUMS))
    assert rest.fingerprint == ref_summary.fingerprint
    assert verify_store(out).ok


def test_fingerprint_follows_content_not_layout(reference_320, medmnist_dir, tmp_path):
    ref, ref_summary = reference_320
    other_layout = _cfg(medmnist_dir, tmp_path / "c32.zarr", limit=320, chunk_size=32, image_codec="zstd")
    other_chunks = build_store(other_layout)
    assert other_chunks.chunks_computed == 10
    assert other_chunks.fingerprint == ref_summary.fingerprint  # chunking and codec are layout
    assert open_store(ref).array("images").compressors[0].cname.value == "lz4"
    assert open_store(tmp_path / "c32.zarr").array("images").compressors[0].cname.value == "zstd"
    assert open_store(tmp_path / "c32.zarr").array("labels").compressors[0].cname.value == "zstd"
    a, b = _arrays(ref), _arrays(tmp_path / "c32.zarr")
    for name in ARRAYS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    no_roi = build_store(_cfg(medmnist_dir, tmp_path / "none.zarr", limit=320, roi="none"))
    assert no_roi.complete and no_roi.fingerprint != ref_summary.fingerprint
    assert (open_store(tmp_path / "none.zarr").array("roi_masks")[:] == 1).all()
    fewer = build_store(_cfg(medmnist_dir, tmp_path / "l319.zarr", limit=319))
    assert fewer.fingerprint not in (ref_summary.fingerprint, no_roi.fingerprint)


# --------------------------------------------------------------------------------------------- failures
def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def folder_with_a_truncated_png(tmp_path_factory) -> tuple[Path, str]:
    """Two classes of real 96² tiles (retina, immunohistochemistry, cells); one PNG cut in half."""
    root = tmp_path_factory.mktemp("folder") / "tiles"
    tiles = skimage_tiles(96, per_image=5)
    for i, t in enumerate(tiles):
        cls = "a" if i % 2 else "b"
        (root / cls).mkdir(parents=True, exist_ok=True)
        (root / cls / f"t{i:02d}.png").write_bytes(_png(t))
    bad = root / "a" / "t03.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return root, "tiles/a/t03.png"  # folder sample ids keep the extension


def test_a_corrupt_image_fails_alone_and_the_store_completes(ray_session, folder_with_a_truncated_png, tmp_path):
    root, bad_id = folder_with_a_truncated_png
    s = build_store(
        BuildConfig(
            dataset="folder", data_dir=str(root), out=tmp_path / "f.zarr", image_size=64, chunk_size=4, progress=False
        )
    )
    assert s.complete and s.counts["failed"] == 1 and s.counts.get("ok", 0) + s.counts.get("fallback", 0) == 14
    assert s.failures and s.failures[0][0] == bad_id and "truncated" in s.failures[0][1]
    st = open_store(tmp_path / "f.zarr")
    st.validate()
    rows = st.manifest().to_pylist()
    (row,) = [r for r in rows if r["sample_id"] == bad_id]
    assert row["status"] == "failed" and row["reason"].startswith("corrupt or truncated image")
    assert row["input_sha256"] is None and row["n_h0"] is None and row["roi_area"] is None
    i = row["index"]
    assert st.array("status")[i] == Status.FAILED and not st.array("images")[i].any()
    assert i not in st.indices() and len(st.indices()) == 14
    good = [r for r in rows if r["status"] != "failed"]
    assert all((r["reason"] is None) == (r["status"] == "ok") for r in good)
    assert all(r["input_sha256"] and r["n_h0"] is not None for r in good)
    assert (st.array("images").oindex[[r["index"] for r in good]].reshape(14, -1).max(axis=1) > 0).all()


def test_strict_stops_with_a_nonzero_exit_through_the_cli(ray_session, folder_with_a_truncated_png, tmp_path):
    from topo.cli.app import app

    root, bad_id = folder_with_a_truncated_png
    out = tmp_path / "strict.zarr"
    args = [
        "build-store",
        "--dataset",
        "folder",
        "--data-dir",
        str(root),
        "--out",
        str(out),
        "--image-size",
        "64",
        "--chunk-size",
        "4",
        "--no-progress",
    ]
    res = CliRunner().invoke(app, [*args, "--strict"])
    assert res.exit_code == 1, res.output
    assert "--strict" in res.output and bad_id in res.output and "truncated" in res.output
    assert not open_store(out).is_complete
    # Without --strict the same store resumes (strictness is not part of the content configuration).
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert open_store(out).is_complete and open_store(out).attrs["build"]["counts"]["failed"] == 1


def test_a_chunk_records_each_bad_payload_with_its_reason(tmp_path):
    """Decode failures inside one chunk, without Ray: each bad sample is failed with its reason, the rest kept."""
    g = Geometry(num_samples=7, height=28, width=28, channels=1, chunk_size=7)
    spec = FiltrationSpec()
    attrs = {"dataset": {}, "persistence": spec.to_json(), "roi": {}, "provenance": {}}
    st = create_store(tmp_path / "c.zarr", g, attrs, build_config={})
    rng = np.random.default_rng(0)
    good = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    payloads = [
        good,
        np.zeros((28, 28, 2), np.uint8),  # wrongly shaped
        b"GIF89a but not really",  # undecodable
        ReadFailure("unreadable file: permission denied"),
        _png(good)[:50],  # truncated
        np.full((28, 28), 7, np.uint8),  # flat: Otsu finds nothing, whole image used
        good,  # prefailed below (duplicate id)
    ]
    task = chunk_mod.ChunkTask(
        store_path=str(tmp_path / "c.zarr"),
        chunk=0,
        start=0,
        records=tuple((f"s{i}", f"ref{i}", i % 2, "train") for i in range(7)),
        prefailed=(None, None, None, None, None, None, "duplicate sample_id (first at index 0)"),
        geometry=g.to_json(),
        filtration=spec.to_json(),
        split_names=("train", "val", "test"),
    )
    res = chunk_mod.process_chunk(task, payloads, roi_entry("otsu"), {})
    assert res.counts == {"ok": 1, "fallback": 1, "failed": 5}
    assert res.first_failure == ("s1", "wrong shape (28, 28, 2): expected HxW or HxWxC with C in 1, 3, 4")
    part = pq.read_table(tmp_path / "c.zarr" / StoreFiles.chunk_part(0)).to_pydict()
    assert part["status"] == ["ok", "failed", "failed", "failed", "failed", "fallback", "failed"]
    reasons = part["reason"]
    assert reasons[0] is None
    assert reasons[1].startswith("wrong shape") and reasons[2].startswith("not a decodable image")
    assert reasons[3] == "unreadable file: permission denied" and reasons[4].startswith("corrupt or truncated")
    assert reasons[5] == "empty ROI mask; whole image used" and reasons[6].startswith("duplicate sample_id")
    assert part["n_h0"][1:5] == [None] * 4 and part["n_h0"][0] > 0
    assert (tmp_path / "c.zarr" / StoreFiles.chunk_sums(0)).exists()
    np.testing.assert_array_equal(st.array("status")[:], [0, 2, 2, 2, 2, 1, 2])
    np.testing.assert_array_equal(st.array("labels")[:], [0, 1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(st.array("images")[0][..., 0], good)
    assert not st.array("pd_h0")[1:5].any() and (st.array("n_h0")[1:5] == 0).all()
