"""The store contract: layout, dtypes, versions and validation, through ``Store.problems()/validate()`` and
``open_store`` (the checksum part of ``topo store verify`` is tested in test_verify.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr

from topo.store_schema import (
    ARRAYS,
    CHUNK_ARRAYS,
    MANIFEST_SCHEMA,
    SCHEMA_VERSION,
    Geometry,
    Status,
    StoreError,
    StoreFiles,
    StoreIncompleteError,
    StoreVersionError,
    create_store,
    open_store,
)
from topo.store_schema.fingerprint import canonical_json, fingerprint
from topo.store_schema.verify import verify_store

ATTRS = {
    "dataset": {"name": "t", "class_names": ["a", "b"], "split_names": ["train", "val", "test"], "license": "x"},
    "persistence": {"direction": "sublevel", "k0": 4, "k1": 6},
    "roi": {"backend": "none", "params": {}},
    "provenance": {},
}
GEOM = Geometry(num_samples=10, height=8, width=6, channels=3, k0=4, k1=6, chunk_size=4)


@pytest.fixture
def mutable_store(small_store, tmp_path) -> Path:
    """A private copy of the session's finished store, to damage."""
    dst = tmp_path / "copy.zarr"
    shutil.copytree(small_store, dst)
    return dst


def _edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


# --------------------------------------------------------------------------------------------- declaration
def test_layout_declares_the_documented_arrays():
    expected = {
        "images": ("uint8", (8, 6, 3)),
        "roi_masks": ("uint8", (8, 6)),
        "labels": ("int32", ()),
        "splits": ("uint8", ()),
        "status": ("uint8", ()),
        "pd_h0": ("float32", (4, 2)),
        "pd_h1": ("float32", (6, 2)),
        "n_h0": ("int16", ()),
        "n_h1": ("int16", ()),
    }
    assert set(ARRAYS) == set(expected) == set(CHUNK_ARRAYS)
    for name, (dtype, trailing) in expected.items():
        spec = ARRAYS[name]
        assert spec.name == name and spec.dtype == dtype and spec.doc
        assert spec.shape(GEOM) == (10, *trailing)
        assert spec.chunks(GEOM) == (4, *trailing)  # chunked along the sample axis only
        block = spec.empty(3, GEOM)
        assert block.shape == (3, *trailing) and block.dtype == np.dtype(dtype)
        assert (block == spec.fill_value).all()
    assert ARRAYS["status"].fill_value == Status.UNWRITTEN


def test_geometry_chunks_and_json():
    assert GEOM.num_chunks == 3
    assert [GEOM.chunk_range(c) for c in range(3)] == [(0, 4), (4, 8), (8, 10)]
    assert Geometry.from_json(json.loads(json.dumps(GEOM.to_json()))) == GEOM


def test_status_codes_and_labels():
    assert [(s.value, s.label) for s in Status] == [(0, "ok"), (1, "fallback"), (2, "failed"), (255, "unwritten")]


def test_store_file_names():
    assert StoreFiles.MANIFEST == "manifest.parquet"
    assert StoreFiles.chunk_part(12) == "_build/chunks/0000012.parquet"
    assert StoreFiles.chunk_sums(3).startswith(StoreFiles.CHUNK_PARTS + "/")
    assert StoreFiles.CALIBRATION_TABLE.startswith(StoreFiles.CALIBRATION_DIR + "/")


# --------------------------------------------------------------------------------------------- create / open
def test_create_store_writes_the_declared_arrays_and_attrs(tmp_path):
    st = create_store(tmp_path / "s.zarr", GEOM, ATTRS, build_config={"a": 1})
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    for name, spec in ARRAYS.items():
        arr = g[name]
        assert arr.dtype == np.dtype(spec.dtype), name
        assert arr.shape == spec.shape(GEOM) and arr.chunks == spec.chunks(GEOM), name
        assert arr.fill_value == spec.fill_value, name
    topo_attrs = dict(g.attrs)["topo"]
    assert topo_attrs["schema_version"] == SCHEMA_VERSION
    assert topo_attrs["geometry"] == GEOM.to_json()
    assert topo_attrs["build"] == {"complete": False, "num_chunks": 3}
    assert json.loads((tmp_path / "s.zarr" / StoreFiles.BUILD_CONFIG).read_text()) == {"a": 1}
    assert st.writable and not st.is_complete
    assert (st.array("status")[:] == Status.UNWRITTEN).all()
    assert st.indices().size == 0  # nothing written yet: nothing usable


def test_an_unfinished_store_is_incomplete_not_corrupt(tmp_path):
    create_store(tmp_path / "s.zarr", GEOM, ATTRS, build_config={"a": 1})
    st = open_store(tmp_path / "s.zarr")
    assert st.problems() == ["build incomplete (re-run the same build-store command to resume)"]
    with pytest.raises(StoreIncompleteError, match="incomplete"):
        st.validate()
    with pytest.raises(StoreIncompleteError, match="resume"):
        st.manifest()
    report = verify_store(tmp_path / "s.zarr")
    assert not report.ok and report.problems == st.problems()


def test_reopening_with_the_same_config_resumes_and_another_config_is_refused(tmp_path):
    cfg = {"roi": {"backend": "otsu"}, "chunk_size": 4, "dataset": "t"}
    create_store(tmp_path / "s.zarr", GEOM, ATTRS, build_config=cfg)
    again = create_store(tmp_path / "s.zarr", GEOM, ATTRS, build_config=dict(cfg))
    assert again.writable
    with pytest.raises(StoreError, match=r"another configuration \(differs in: chunk_size, roi\)"):
        create_store(tmp_path / "s.zarr", GEOM, ATTRS, build_config={**cfg, "roi": {"backend": "sam"}, "chunk_size": 8})


def test_create_refuses_foreign_content(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        create_store(tmp_path / "full", GEOM, ATTRS, build_config={})
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match="not made by build-store"):
        create_store(tmp_path / "plain.zarr", GEOM, ATTRS, build_config={})


def test_open_store_errors_name_the_problem(tmp_path):
    with pytest.raises(StoreError, match=r"no store at .*nothing\.zarr"):
        open_store(tmp_path / "nothing.zarr")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a topo store"):
        open_store(tmp_path / "plain.zarr")
    create_store(tmp_path / "s.zarr", GEOM, ATTRS, build_config={})
    with pytest.raises(ValueError, match="mode must be"):
        open_store(tmp_path / "s.zarr", mode="w")
    st = open_store(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="read-only"):
        st.update_attrs(x=1)
    with pytest.raises(KeyError, match=r"pd_h2.*pd_h0"):
        st.array("pd_h2")


# --------------------------------------------------------------------------------------------- a built store
def test_a_built_store_validates(small_store):
    st = open_store(small_store)
    assert st.problems() == []
    st.validate()
    assert st.is_complete and st.fingerprint and st.fingerprint.startswith("sha256:")
    assert verify_store(small_store).ok
    m = pq.read_table(small_store / StoreFiles.MANIFEST)
    assert m.schema.equals(MANIFEST_SCHEMA)
    assert m.num_rows == st.num_samples == 780
    assert m["index"].to_pylist() == list(range(780))
    assert not (small_store / StoreFiles.CHUNK_PARTS).exists()  # build scratch removed when finished
    assert st.class_names == ["malignant", "normal, benign"]
    assert st.split_names == ["train", "val", "test"]
    assert len(st.indices("train")) == 546 and len(st.indices(["val", "test"])) == 234
    with pytest.raises(ValueError, match=r"unknown split 'dev'.*'train', 'val', 'test'"):
        st.indices("dev")
    d = st.describe()
    assert d["counts"]["by_split"] == {"test": 156, "train": 546, "val": 78}
    assert d["persistence"]["infinite_deaths"].startswith("set to the maximum filtration value")


def test_a_deleted_array_is_named(mutable_store):
    shutil.rmtree(mutable_store / "pd_h1")
    st = open_store(mutable_store)
    assert "array 'pd_h1' is missing" in st.problems()
    with pytest.raises(StoreError, match="array 'pd_h1' is missing") as e:
        st.validate()
    assert not isinstance(e.value, StoreIncompleteError)
    report = verify_store(mutable_store)
    assert not report.ok and "array 'pd_h1' is missing" in report.problems


def test_a_changed_dtype_is_named(mutable_store):
    _edit_json(mutable_store / "labels" / "zarr.json", lambda d: d.update(data_type="int64"))
    st = open_store(mutable_store)
    assert st.problems() == ["array 'labels' has dtype int64, expected int32"]
    with pytest.raises(StoreError, match="array 'labels' has dtype int64, expected int32"):
        st.validate()
    assert "array 'labels' has dtype int64, expected int32" in verify_store(mutable_store).problems


def test_a_changed_shape_is_named(mutable_store):
    _edit_json(mutable_store / "pd_h0" / "zarr.json", lambda d: d.update(shape=[780, 40, 2]))
    assert open_store(mutable_store).problems() == ["array 'pd_h0' has shape (780, 40, 2), expected (780, 48, 2)"]


def test_a_bumped_major_version_is_refused_by_open_store(mutable_store):
    _edit_json(mutable_store / "zarr.json", lambda d: d["attributes"]["topo"].update(schema_version="2.0.0"))
    with pytest.raises(StoreVersionError, match=r"schema_version 2\.0\.0.*reads schema 1\.x"):
        open_store(mutable_store)
    with pytest.raises(StoreVersionError, match=r"2\.0\.0"):
        verify_store(mutable_store)


def test_a_newer_minor_version_is_read(mutable_store):
    from topo.store_schema.location import Location
    from topo.store_schema.seal import seal

    def newer(d: dict) -> None:  # as a newer topo would write it: its own version, sealed with it
        t = d["attributes"]["topo"]
        t.update(schema_version="1.9.3")
        t["integrity"] = seal(Location("dir", str(mutable_store)), t)

    _edit_json(mutable_store / "zarr.json", newer)
    st = open_store(mutable_store)
    assert st.attrs["schema_version"] == "1.9.3" and st.problems() == []


def test_a_garbled_version_is_named(mutable_store):
    _edit_json(mutable_store / "zarr.json", lambda d: d["attributes"]["topo"].update(schema_version="one"))
    with pytest.raises(StoreVersionError, match="'one' is not a semantic version"):
        open_store(mutable_store)


def test_missing_manifest_attrs_and_columns_are_named(mutable_store):
    m = pq.read_table(mutable_store / StoreFiles.MANIFEST)
    pq.write_table(m.drop_columns(["reason"]).slice(0, 700), mutable_store / StoreFiles.MANIFEST)
    problems = open_store(mutable_store).problems()
    assert "manifest has 700 rows, expected 780" in problems
    assert "manifest lacks column(s): reason" in problems
    (mutable_store / StoreFiles.MANIFEST).unlink()
    assert open_store(mutable_store).problems() == ["manifest.parquet is missing"]
    _edit_json(mutable_store / "zarr.json", lambda d: d["attributes"]["topo"].pop("persistence"))
    assert open_store(mutable_store).problems() == ["attribute(s) missing: persistence"]


def test_every_problem_is_reported_at_once(mutable_store):
    shutil.rmtree(mutable_store / "images")
    _edit_json(mutable_store / "n_h0" / "zarr.json", lambda d: d.update(data_type="float32"))
    problems = open_store(mutable_store).problems()
    assert "array 'images' is missing" in problems
    assert "array 'n_h0' has dtype float32, expected int16" in problems


# --------------------------------------------------------------------------------------------- fingerprint
def test_fingerprint_is_canonical_and_content_sensitive():
    rows = [("a/1", "h1", 0, "train"), ("a/2", None, 1, "test")]
    fp = fingerprint({"x": 1, "y": {"b": 2, "a": 1}}, rows)
    assert fp == fingerprint({"y": {"a": 1, "b": 2}, "x": 1}, list(rows))  # key order does not matter
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 64
    assert fp != fingerprint({"x": 2, "y": {"b": 2, "a": 1}}, rows)
    assert fp != fingerprint({"x": 1, "y": {"b": 2, "a": 1}}, rows[::-1])  # sample order matters
    assert fp != fingerprint({"x": 1, "y": {"b": 2, "a": 1}}, [rows[0], ("a/2", None, 0, "test")])
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
