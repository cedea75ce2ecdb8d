"""A resumed build must read the input it was started from: other images of the same count are refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fixtures import datasets

from topo.pipeline.job import BuildConfig, build_store
from topo.pipeline.ray_runtime import RayResources
from topo.pipeline.resume_inputs import InputMismatchError, differences
from topo.store_schema import StoreError, StoreFiles, open_store


def _cfg(data: Path, out: Path, **kw) -> BuildConfig:
    return BuildConfig(
        dataset="folder",
        data_dir=str(data),
        out=out,
        image_size=16,
        chunk_size=4,
        progress=False,
        resources=RayResources(num_cpus=2),
        **kw,
    )


def test_differences_name_what_changed() -> None:
    old = [["a", "a.png", 0, "train", 10, 1], ["b", "b.png", 1, "test", 10, 1]]
    assert differences(old, [list(r) for r in old]) is None
    new = [["a", "a.png", 0, "train", 12, 5], ["c", "c.png", 1, "test", 10, 1]]
    msg = differences(old, new)
    assert msg is not None
    assert "1 sample(s) changed, e.g. a (size 10 -> 12, mtime 1 -> 5)" in msg
    assert "1 added, e.g. c" in msg and "1 removed, e.g. b" in msg
    assert differences(old, old[::-1]) == "the same samples in another order"


@pytest.mark.slow  # three small Ray builds
def test_resume_from_another_data_dir_of_the_same_count_is_refused(ray_session, tmp_path: Path) -> None:
    # The folder's name is the dataset's name (part of the build config): keep it, change only the files.
    a = datasets.write_image_folder(tmp_path / "a" / "data", "png", per_class=6, seed=1)
    b = datasets.write_image_folder(tmp_path / "b" / "data", "png", per_class=6, seed=2)  # same names, other pixels
    out = tmp_path / "s.zarr"
    part = build_store(_cfg(a, out, max_chunks=1))
    assert not part.complete and (out / StoreFiles.BUILD_INPUTS).exists()
    with pytest.raises(InputMismatchError, match=r"other input than this run reads: 12 sample\(s\) changed"):
        build_store(_cfg(b, out))
    assert isinstance(InputMismatchError("x"), StoreError)  # the CLI reports it without a traceback
    moved = tmp_path / "moved" / "data"
    shutil.copytree(a, moved)  # copytree keeps modification times: the same input, moved
    done = build_store(_cfg(moved, out))
    assert done.complete and done.chunks_skipped == 1
    assert open_store(out).validate() is None


def test_a_touched_file_is_named(ray_session, tmp_path: Path) -> None:
    a = datasets.write_image_folder(tmp_path / "a", "png", per_class=4, seed=1)
    out = tmp_path / "s.zarr"
    build_store(_cfg(a, out, max_chunks=1))
    victim = a / "benign" / "img01.png"
    os.utime(victim, ns=(0, 0))
    with pytest.raises(InputMismatchError, match=r"a/benign/img01\.png \(mtime"):
        build_store(_cfg(a, out))
