"""`verify_store` and `topo store verify` on a real store damaged in the ways stores get damaged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from topo.store_schema import SCHEMA_VERSION, StoreVersionError
from topo.store_schema.verify import verify_store

TOPO = Path(sys.executable).with_name("topo")


@pytest.fixture()
def store(small_store: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "demo.zarr"
    shutil.copytree(small_store, dst)
    return dst


def _cli_verify(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}  # no wrapping: messages are matched whole
    return subprocess.run(
        [str(TOPO), "store", "verify", str(path)], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_intact_store_verifies(store: Path) -> None:
    report = verify_store(store)
    assert report.ok, report.problems
    assert report.chunks_checked == 9 * 13
    r = _cli_verify(store)
    assert r.returncode == 0, r.stderr
    assert "117 chunk checksums match" in r.stdout


def test_flipped_byte_in_an_image_chunk(store: Path) -> None:
    f = store / "images" / "c" / "3" / "0" / "0" / "0"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    report = verify_store(store)
    # Either the codec rejects the block or it decodes to other pixels; both name the chunk and samples.
    assert len(report.problems) == 1
    assert "array 'images' chunk 3 (samples 192–255)" in report.problems[0]
    r = _cli_verify(store)
    assert r.returncode == 1
    assert "array 'images' chunk 3 (samples 192–255)" in r.stderr


def test_deleted_chunk_file(store: Path) -> None:
    (store / "pd_h1" / "c" / "5" / "0" / "0").unlink()
    report = verify_store(store)
    assert report.problems == [
        "array 'pd_h1' chunk 5 (samples 320–383) does not match its checksum: altered or missing"
    ]


def test_deleted_array_directory(store: Path) -> None:
    shutil.rmtree(store / "pd_h0")
    report = verify_store(store)
    assert report.problems == ["array 'pd_h0' is missing"]
    r = _cli_verify(store)
    assert r.returncode == 1 and "array 'pd_h0' is missing" in r.stderr


def test_array_metadata_with_another_dtype(store: Path) -> None:
    meta = store / "labels" / "zarr.json"
    j = json.loads(meta.read_text())
    j["data_type"] = "int64"
    meta.write_text(json.dumps(j))
    report = verify_store(store)
    assert report.problems == ["array 'labels' has dtype int64, expected int32"]


def test_schema_major_version_bump(store: Path) -> None:
    meta = store / "zarr.json"
    j = json.loads(meta.read_text())
    j["attributes"]["topo"]["schema_version"] = "2.0.0"
    meta.write_text(json.dumps(j))
    with pytest.raises(StoreVersionError) as e:
        verify_store(store)
    assert "2.0.0" in str(e.value) and SCHEMA_VERSION in str(e.value)
    r = _cli_verify(store)
    assert r.returncode != 0
    assert "schema_version 2.0.0" in r.stderr and SCHEMA_VERSION in r.stderr


def test_several_problems_are_all_reported(store: Path) -> None:
    (store / "labels" / "c" / "0").unlink()
    (store / "status" / "c" / "12").unlink()
    problems = verify_store(store).problems
    assert len(problems) == 2
    assert any("array 'labels' chunk 0 (samples 0–63)" in p for p in problems)
    assert any("array 'status' chunk 12 (samples 768–779)" in p for p in problems)


def test_unreadable_array_metadata_is_a_problem_not_a_crash(store: Path) -> None:
    (store / "labels" / "zarr.json").write_text("{not json")
    problems = verify_store(store).problems
    assert len(problems) == 1 and "labels" in problems[0]
