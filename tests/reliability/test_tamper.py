"""Every class of tampering found by the audit is caught by ``topo store verify`` (and the cheap ones on open).

One tiny real store (12 generated PNGs, 3 chunks, Otsu ROI, real GUDHI) is built per module; each test damages a
copy of it in one way and checks that verify names the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures import datasets

from topo.store_schema import StoreError, StoreFiles, open_store
from topo.store_schema.integrity import block_digest
from topo.store_schema.location import Location
from topo.store_schema.seal import seal
from topo.store_schema.verify import verify_store

TOPO = Path(sys.executable).with_name("topo")
DIGEST = "root digest does not match"


@pytest.fixture(scope="module")
def built(ray_session, tmp_path_factory) -> Path:
    from topo.pipeline.job import BuildConfig, build_store
    from topo.pipeline.ray_runtime import RayResources

    root = tmp_path_factory.mktemp("tamper")
    data = datasets.write_image_folder(root / "data", "png", per_class=6, seed=3)
    out = root / "s.zarr"
    s = build_store(
        BuildConfig(
            dataset="folder",
            data_dir=str(data),
            out=out,
            image_size=16,
            chunk_size=4,
            progress=False,
            resources=RayResources(num_cpus=2),
        )
    )
    assert s.complete
    return out


@pytest.fixture()
def store(built: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "s.zarr"
    shutil.copytree(built, dst)
    return dst


def _attrs(store: Path) -> dict:
    return json.loads((store / "zarr.json").read_text())


def _write_attrs(store: Path, meta: dict) -> None:
    (store / "zarr.json").write_text(json.dumps(meta))


def _reseal(store: Path) -> None:
    """What a tool that edits a store *and* recomputes the digest would leave (to reach the checks behind it)."""
    meta = _attrs(store)
    meta["attributes"]["topo"]["integrity"] = seal(Location("dir", str(store)), meta["attributes"]["topo"])
    _write_attrs(store, meta)


def test_the_intact_store_verifies_fully_and_fast(store: Path) -> None:
    full = verify_store(store)
    assert full.ok, full.problems
    assert full.chunks_checked == 9 * 3
    fast = verify_store(store, fast=True)
    assert fast.ok and fast.chunks_checked == 0 and "--fast" in fast.summary
    open_store(store).validate()


@pytest.mark.parametrize("column", ["label", "split", "status", "sample_id"])
def test_edited_manifest_column(store: Path, column: str) -> None:
    path = store / StoreFiles.MANIFEST
    m = pq.read_table(path)
    values = m[column].to_pylist()
    other = {"split": "test" if values[0] != "test" else "train", "status": "failed", "sample_id": "someone/else"}
    values[0] = 1 - values[0] if column == "label" else other[column]
    pq.write_table(m.set_column(m.column_names.index(column), column, pa.array(values, m[column].type)), path)
    assert DIGEST in " ".join(verify_store(store).problems)
    with pytest.raises(StoreError, match=DIGEST):  # what the trainer's open (validate) does
        open_store(store).validate()


@pytest.mark.parametrize(
    "edit",
    [
        ("dataset", "class_names", lambda v: v[::-1]),
        ("dataset", "split_names", lambda v: [v[2], v[1], v[0]]),  # the trainer would read test as train
        ("persistence", "direction", lambda v: "superlevel" if v != "superlevel" else "sublevel"),
        (None, "fingerprint", lambda v: "sha256:" + "0" * 64),
    ],
    ids=["class_names", "split_names", "filtration", "fingerprint"],
)
def test_edited_attribute(store: Path, edit) -> None:
    section, key, change = edit
    meta = _attrs(store)
    target = meta["attributes"]["topo"] if section is None else meta["attributes"]["topo"][section]
    target[key] = change(target[key])
    _write_attrs(store, meta)
    assert DIGEST in " ".join(verify_store(store).problems)
    with pytest.raises(StoreError, match=DIGEST):
        open_store(store).validate()


def test_edited_array_metadata(store: Path) -> None:
    meta = store / "labels" / "zarr.json"
    j = json.loads(meta.read_text())
    j["fill_value"] = 7  # unwritten samples would read as class 7
    meta.write_text(json.dumps(j))
    assert DIGEST in " ".join(verify_store(store).problems)


@pytest.mark.parametrize("where", ["notes.txt", "images/c/run_me.sh", "_build/extra.json"])
def test_unknown_files(store: Path, where: str) -> None:
    (store / where).write_text("x")
    problems = verify_store(store).problems
    assert problems == [f"1 file(s) that are not part of a topo store: {where}"]


def test_rows_removed_from_the_checksum_table(store: Path) -> None:
    path = store / StoreFiles.CHECKSUMS
    t = pq.read_table(path)
    pq.write_table(t.slice(0, t.num_rows - 2), path)
    assert DIGEST in " ".join(verify_store(store).problems)
    _reseal(store)
    problems = verify_store(store).problems
    assert len(problems) == 1 and problems[0].startswith("checksum table lacks 2 chunk(s)"), problems


def test_an_emptied_checksum_table(store: Path) -> None:
    path = store / StoreFiles.CHECKSUMS
    t = pq.read_table(path)
    pq.write_table(t.slice(0, 0), path)
    _reseal(store)
    problems = verify_store(store).problems
    assert problems and problems[0].startswith("checksum table lacks 27 chunk(s)"), problems


def test_a_duplicated_checksum_row(store: Path) -> None:
    path = store / StoreFiles.CHECKSUMS
    t = pq.read_table(path)
    pq.write_table(pa.concat_tables([t, t.slice(0, 1)]), path)
    _reseal(store)
    assert any("more than once" in p for p in verify_store(store).problems)


def test_a_chunk_altered_with_its_checksum_recomputed(store: Path) -> None:
    st = open_store(store, mode="r+")
    block = st.array("labels")[0:4]
    block[0] = 1 - block[0]
    st.array("labels")[0:4] = block
    path = store / StoreFiles.CHECKSUMS
    rows = pq.read_table(path).to_pylist()
    for r in rows:
        if r["array"] == "labels" and r["chunk"] == 0:
            r["sha256"] = block_digest(block)
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_table(path).schema), path)
    assert DIGEST in " ".join(verify_store(store, fast=True).problems)


def test_a_chunk_altered_alone_is_caught_by_the_full_verify_not_the_fast_one(store: Path) -> None:
    st = open_store(store, mode="r+")
    block = st.array("status")[4:8]
    block[1] = 2
    st.array("status")[4:8] = block
    assert verify_store(store, fast=True).ok  # --fast trusts the chunk checksums, as documented
    assert any("array 'status' chunk 1" in p for p in verify_store(store).problems)


@pytest.mark.parametrize("member", [StoreFiles.MANIFEST, StoreFiles.CHECKSUMS])
def test_a_truncated_parquet_is_a_clear_error(store: Path, member: str) -> None:
    path = store / member
    path.write_bytes(path.read_bytes()[:100])
    problems = verify_store(store).problems
    assert any("not readable Parquet (truncated or corrupt)" in p for p in problems), problems
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    r = subprocess.run(
        [str(TOPO), "store", "verify", str(store)], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr and "truncated or corrupt" in r.stderr


def test_missing_calibration_tables(store: Path) -> None:
    meta = _attrs(store)
    meta["attributes"]["topo"]["calibration"] = {"tables": {"table": StoreFiles.CALIBRATION_TABLE}}
    _write_attrs(store, meta)  # calibration is not sealed (calibrate-aug adds it later): checked on its own
    problems = verify_store(store).problems
    assert problems == [f"calibration table 'table': {store}: {StoreFiles.CALIBRATION_TABLE} is missing"]
