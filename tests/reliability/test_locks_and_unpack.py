"""One writer per store whatever the path spelling; unpack refuses members a store does not hold and oversize zips."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from topo.store_schema import StoreError
from topo.store_schema.lock import StoreLockedError, lock_path, writer_lock
from topo.store_schema.members import size_budget
from topo.store_schema.pack import pack_store, unpack_store


def test_a_symlinked_alias_takes_the_same_lock(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    store, alias = real / "s.zarr", tmp_path / "alias" / "s.zarr"
    assert lock_path(alias) == lock_path(store) == real / "s.zarr.lock"
    relative = tmp_path / "real" / ".." / "real" / "s.zarr"
    assert lock_path(relative) == lock_path(store)
    with (
        writer_lock(store, "build-store"),
        pytest.raises(StoreLockedError, match="is being written by build-store"),
        writer_lock(alias, "build-store"),
    ):
        pass
    with writer_lock(alias, "build-store"):  # released: free again
        pass


@pytest.fixture(scope="module")
def packed(ray_session, tmp_path_factory) -> tuple[Path, Path]:
    from fixtures import datasets

    from topo.pipeline.job import BuildConfig, build_store
    from topo.pipeline.ray_runtime import RayResources

    root = tmp_path_factory.mktemp("unpack")
    data = datasets.write_image_folder(root / "data", "png", per_class=4, seed=4)
    out = root / "s.zarr"
    build_store(
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
    return out, pack_store(out, root / "s.zip").path


def _with_extra(src: Path, dst: Path, name: str, data: bytes) -> Path:
    shutil.copy(src, dst)
    with zipfile.ZipFile(dst, "a") as zf:
        zf.writestr(name, data)
    return dst


def test_unpack_refuses_a_member_the_store_does_not_hold(packed, tmp_path: Path) -> None:
    _, z = packed
    bad = _with_extra(z, tmp_path / "bad.zip", "run_me.sh", b"#!/bin/sh\nrm -rf ~\n")
    with pytest.raises(StoreError, match=r"does not hold: run_me\.sh"):
        unpack_store(bad, tmp_path / "out.zarr", verify=False)
    assert not (tmp_path / "out.zarr").exists() and not list(tmp_path.glob(".out.zarr.*"))


def test_unpack_refuses_more_bytes_than_the_store_can_hold(packed, tmp_path: Path) -> None:
    store, z = packed
    import json

    attrs = json.loads((store / "zarr.json").read_text())["attributes"]["topo"]
    budget = size_budget(attrs)
    # A declared member (a calibration table) padded far past what a 16-sample store holds.
    bad = _with_extra(z, tmp_path / "big.zip", "calibration/deltas.parquet", b"\0" * (budget + 1))
    with pytest.raises(StoreError, match=r"more than the .* its store can hold"):
        unpack_store(bad, tmp_path / "out.zarr", verify=False)


def test_the_intact_archive_unpacks_and_verifies(packed, tmp_path: Path) -> None:
    _, z = packed
    out = unpack_store(z, tmp_path / "ok.zarr")
    assert (out / "zarr.json").is_file()


def test_a_task_whose_driver_lost_the_lock_may_not_write(tmp_path: Path) -> None:
    from topo.store_schema.lock import check_lease, lease_of_this_process

    store = tmp_path / "s.zarr"
    with writer_lock(store, "build-store"):
        check_lease(store, lease_of_this_process())  # the holder's own tasks write
        with pytest.raises(StoreLockedError, match="no longer holds"):
            check_lease(store, "elsewhere:1")  # a task issued by a killed driver, after a resume took over
    with pytest.raises(StoreLockedError, match="no longer holds"):
        check_lease(store, lease_of_this_process())  # nobody holds it
