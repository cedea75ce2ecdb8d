"""Tail balancing: the last, partial round of chunks is cut into slices so no worker waits, and a chunk prepared
in slices is written exactly as one prepared whole (same arrays, same manifest part, same checksums)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from topo.pipeline import chunk as chunk_mod
from topo.pipeline.persistence import FiltrationSpec
from topo.pipeline.roi import roi_entry
from topo.pipeline.sources import get_source
from topo.store_schema import CHUNK_ARRAYS, Geometry, StoreFiles, create_store, open_store


@pytest.mark.parametrize(
    ("todo", "workers", "expected"),
    [
        ([0, 1, 2, 3, 4], 2, {4: 2}),  # 305 images in 5 chunks of 64 on 2 workers: the last one cut in two
        ([0, 1, 2, 3], 2, {}),  # full rounds only
        ([7], 4, {7: 4}),  # one chunk left (a resume): every worker gets a quarter
        ([3, 5], 3, {3: 2, 5: 2}),
        ([0, 1, 2, 3, 4, 5, 6], 3, {6: 3}),
        ([0, 1, 2], 1, {}),  # one worker: nothing to balance
        ([], 2, {}),
    ],
)
def test_tail_parts(todo, workers, expected) -> None:
    split = chunk_mod.tail_parts(todo, workers)
    assert split == expected
    last_round = (len(todo) % workers or workers) if todo else 0
    if split:  # the last round has at least one task per worker
        assert sum(split.values()) >= workers and len(split) == last_round


def test_part_ranges_cover_the_chunk_once() -> None:
    for n, parts in [(64, 2), (49, 2), (7, 4), (3, 4)]:
        cuts = [chunk_mod.part_range(n, k, parts) for k in range(parts)]
        assert cuts[0][0] == 0 and cuts[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))


def _store_and_task(root: Path, npz: Path, records, info, chunk: int = 0):
    g = Geometry(len(records), 28, 28, 1, chunk_size=len(records))
    spec = FiltrationSpec()
    attrs = {"dataset": info.to_json(), "persistence": spec.to_json(), "roi": {}, "provenance": {}}
    create_store(root, g, attrs, build_config={})
    return chunk_mod.ChunkTask(
        store_path=str(root),
        chunk=chunk,
        start=0,
        records=tuple((r.sample_id, r.source_ref, r.label, r.split) for r in records),
        prefailed=(None,) * (len(records) - 1) + ("a reason known before decoding",),
        geometry=g.to_json(),
        filtration=spec.to_json(),
        split_names=info.split_names,
    )


def test_a_chunk_prepared_in_slices_is_written_as_one(medmnist_dir, tmp_path) -> None:
    npz = medmnist_dir / "breastmnist.npz"
    src = get_source("npz", data_dir=str(npz))
    records, info = src.records()[:21], src.info()
    payloads = list(src.payloads(records))
    src.close()
    whole_task = _store_and_task(tmp_path / "whole.zarr", npz, records, info)
    split_task = _store_and_task(tmp_path / "split.zarr", npz, records, info)
    otsu = roi_entry("otsu")
    a = chunk_mod.process_chunk(whole_task, payloads, otsu, {})
    cuts = [chunk_mod.part_range(len(payloads), k, 3) for k in range(3)]
    parts = [chunk_mod.prepare_part(split_task, lo, hi, payloads[lo:hi], otsu, {}) for lo, hi in cuts]
    assert [len(p) for p in parts] == [7, 7, 7]
    b = chunk_mod.finish_parts(split_task, *parts)
    assert (a.n, a.counts, a.first_failure, a.first_failure_index) == (
        b.n,
        b.counts,
        b.first_failure,
        b.first_failure_index,
    )
    assert a.counts.get("failed") == 1  # the pre-failed last sample stayed aligned with its record
    sa, sb = open_store(tmp_path / "whole.zarr"), open_store(tmp_path / "split.zarr")
    for name in CHUNK_ARRAYS:
        np.testing.assert_array_equal(sa.array(name)[:], sb.array(name)[:], err_msg=name)
    part = StoreFiles.chunk_part(0)
    assert pq.read_table(tmp_path / "whole.zarr" / part).equals(pq.read_table(tmp_path / "split.zarr" / part))
