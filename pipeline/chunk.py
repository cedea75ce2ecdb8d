"""What happens to one chunk on a worker: decode → ROI → persistence → write, then record completion.

A chunk is ``chunk_size`` consecutive samples; the worker that processes it is the only writer of that chunk of
every array, so concurrent workers never touch the same file. The chunk's manifest part is written last,
atomically: its presence is what marks the chunk complete for a resumed build.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import zarr

from topo.pipeline.decode import SampleError, decode
from topo.pipeline.persistence import FiltrationSpec, top_k, topk_diagrams
from topo.pipeline.roi import RoiBackend, RoiEntry
from topo.pipeline.roi.quality import roi_quality
from topo.pipeline.sources import Payload
from topo.store_schema import ARRAYS, CHUNK_ARRAYS, Geometry, Status, StoreFiles
from topo.store_schema.integrity import block_digest
from topo.store_schema.lock import check_lease
from topo.store_schema.manifest import CHECKSUM_SCHEMA, FULL_DIAGRAM_SCHEMA, MANIFEST_SCHEMA
from topo.store_schema.store import write_table_atomic


@dataclass
class Prepared:
    """One sample after decode and ROI: what persistence and the writer need."""

    image: np.ndarray | None
    mask: np.ndarray | None
    input_sha256: str | None
    status: Status
    reason: str | None
    quality: str | None = None  # ok | suspect:<reasons>; None when failed or without a mask of its own


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs about one chunk besides its payloads (plain data, cheap to ship)."""

    store_path: str
    chunk: int
    start: int
    records: tuple[tuple[str, str, int, str], ...]  # (sample_id, source_ref, label, split)
    prefailed: tuple[str | None, ...]  # a reason known before decoding (duplicate id, bad label), else None
    geometry: dict[str, int]
    filtration: dict[str, Any]
    split_names: tuple[str, ...]
    lease: str | None = None  # the writer lock's owner when the task was issued (None: no lease check)
    roi_suspect: str = "keep"  # what a suspect mask becomes: fallback | keep | fail (resolved, never auto)
    roi_polarity: str = "auto"  # the dataset's lesion polarity, for the contrast check
    jpeg_draft: bool = True  # let Pillow decode a large JPEG DCT-downscaled (pipeline/decode.py)


@dataclass(frozen=True)
class ChunkResult:
    """What a worker reports for one chunk: counts by status and the first failure, for the driver's summary."""

    chunk: int
    n: int
    counts: dict[str, int]
    first_failure: tuple[str, str] | None  # (sample_id, reason) of the chunk's lowest-index failed sample
    seconds: float
    first_failure_index: int | None = None  # that sample's index in the store


def prepare(task: ChunkTask, payloads: Sequence[Payload], roi: RoiBackend) -> list[Prepared]:
    """Decode every payload and compute ROI masks for the decodable ones (one batched ROI call)."""
    g = Geometry.from_json(task.geometry)
    out: list[Prepared] = []
    for payload, pre in zip(payloads, task.prefailed, strict=True):
        if pre is not None:
            out.append(Prepared(None, None, None, Status.FAILED, pre))
            continue
        try:
            d = decode(payload, height=g.height, width=g.width, channels=g.channels, draft=task.jpeg_draft)
            out.append(Prepared(d.image, None, d.input_sha256, Status.OK, None))
        except SampleError as e:
            out.append(Prepared(None, None, None, Status.FAILED, e.reason))
        except Exception as e:  # any error of one sample (a decoder's, a MemoryError) fails that sample alone
            out.append(Prepared(None, None, None, Status.FAILED, f"decode failed: {type(e).__name__}: {e}"))
    todo = [p for p in out if p.status == Status.OK]
    if todo:
        try:
            results = roi.checked([p.image for p in todo])
        except Exception as e:  # a broken ROI model must not lose the chunk: fall back, with the reason
            results = None
            for p in todo:
                p.mask, p.status, p.reason = _whole(p.image), Status.FALLBACK, f"ROI backend error: {e}"
        for p, r in zip(todo, results or [], strict=False):
            p.mask = r.mask
            if r.fallback_reason:
                p.status, p.reason = Status.FALLBACK, r.fallback_reason
            else:
                _judge(p, task)
    return out


def _judge(p: Prepared, task: ChunkTask) -> None:
    """Flag an implausible mask and apply the build's ``--roi-suspect`` policy to it."""
    assert p.image is not None and p.mask is not None
    p.quality = roi_quality(p.image, p.mask, task.roi_polarity)
    if p.quality == "ok" or task.roi_suspect == "keep":
        return
    reason = p.quality.replace("suspect:", "suspect ROI: ", 1)
    if task.roi_suspect == "fail":
        p.status, p.reason = Status.FAILED, reason
    else:
        p.mask, p.status, p.reason = _whole(p.image), Status.FALLBACK, f"{reason}; whole image used"


def _whole(image: np.ndarray | None) -> np.ndarray:
    assert image is not None
    return np.ones(image.shape[:2], np.uint8)


def finish(task: ChunkTask, prepared: Sequence[Prepared]) -> ChunkResult:
    """Persistence for the usable samples, then write every array's chunk and the completion record."""
    t0 = time.perf_counter()
    g = Geometry.from_json(task.geometry)
    spec = FiltrationSpec.from_json(task.filtration)
    n = len(prepared)
    blocks = {name: ARRAYS[name].empty(n, g) for name in CHUNK_ARRAYS}
    for i, (_, _, label, split) in enumerate(task.records):
        blocks["labels"][i] = label
        blocks["splits"][i] = task.split_names.index(split)
    full = _diagrams_into(blocks, spec, prepared)
    for i, p in enumerate(prepared):
        blocks["status"][i] = int(p.status)
        if p.status == Status.FAILED:
            continue
        blocks["images"][i] = p.image
        blocks["roi_masks"][i] = p.mask

    _check_lease(task)
    group = zarr.open_group(task.store_path, mode="r+")
    stop = task.start + n
    for name, block in blocks.items():
        group[name][task.start : stop] = block

    root = Path(task.store_path)
    sums = pa.table(
        {
            "array": list(blocks),
            "chunk": [task.chunk] * len(blocks),
            "start": [task.start] * len(blocks),
            "stop": [stop] * len(blocks),
            "sha256": [block_digest(b) for b in blocks.values()],
        },
        schema=CHECKSUM_SCHEMA,
    )
    write_table_atomic(root / StoreFiles.chunk_sums(task.chunk), sums)
    if full is not None:
        write_table_atomic(root / StoreFiles.full_diagrams_part(task.chunk), _full_table(task.start, n, full))
    rows = {
        "index": [task.start + i for i in range(n)],
        "sample_id": [r[0] for r in task.records],
        "source_ref": [r[1] for r in task.records],
        "input_sha256": [p.input_sha256 for p in prepared],
        "label": [r[2] for r in task.records],
        "split": [r[3] for r in task.records],
        "roi_area": [float(p.mask.mean()) if p.mask is not None else None for p in prepared],
        "n_h0": [int(blocks["n_h0"][i]) if prepared[i].status != Status.FAILED else None for i in range(n)],
        "n_h1": [int(blocks["n_h1"][i]) if prepared[i].status != Status.FAILED else None for i in range(n)],
        "status": [p.status.label for p in prepared],
        "reason": [p.reason for p in prepared],
        "roi_quality": [p.quality for p in prepared],
    }
    _check_lease(task)  # again: the arrays took a while, and the completion record is what a resume trusts
    write_table_atomic(root / StoreFiles.chunk_part(task.chunk), pa.table(rows, schema=MANIFEST_SCHEMA))
    counts = {s.label: sum(p.status == s for p in prepared) for s in (Status.OK, Status.FALLBACK, Status.FAILED)}
    at = next((i for i, p in enumerate(prepared) if p.status == Status.FAILED), None)
    failed = None if at is None else (task.records[at][0], prepared[at].reason or "")
    return ChunkResult(task.chunk, n, counts, failed, time.perf_counter() - t0, None if at is None else task.start + at)


def _check_lease(task: ChunkTask) -> None:
    if task.lease is not None:
        check_lease(task.store_path, task.lease)


def _diagrams_into(
    blocks: dict[str, np.ndarray], spec: FiltrationSpec, prepared: Sequence[Prepared]
) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """Top-k diagrams of the usable samples: one GUDHI call per chunk, per sample only if that call fails.

    Returns the full diagrams by position in the chunk when the spec asks for them, else ``None``.
    """
    full: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if spec.full_diagrams else None
    todo = [i for i, p in enumerate(prepared) if p.status != Status.FAILED]
    groups = [todo]
    for group in groups:
        if not group:
            continue
        try:
            topk = topk_diagrams(
                [prepared[i].image for i in group],
                [prepared[i].mask for i in group],
                spec,
                keep_full=full is not None,
            )
        except Exception as e:
            if len(group) > 1:
                groups += [[i] for i in group]
            else:
                prepared[group[0]].status = Status.FAILED
                prepared[group[0]].reason = f"persistence failed: {e}"
            continue
        blocks["pd_h0"][group], blocks["n_h0"][group] = topk.h0, topk.n_h0
        blocks["pd_h1"][group], blocks["n_h1"][group] = topk.h1, topk.n_h1
        if full is not None and topk.full is not None:
            full.update(zip(group, topk.full, strict=True))
    return full


def _full_table(start: int, n: int, full: dict[int, tuple[np.ndarray, np.ndarray]]) -> pa.Table:
    """Every pair of every usable sample, in the store's documented order (failed samples: null)."""
    cols: dict[str, list] = {"index": [], "h0": [], "h1": []}
    for i in range(n):
        cols["index"].append(start + i)
        for dim, d in zip(("h0", "h1"), full.get(i, (None, None)), strict=True):
            if d is None:
                cols[dim].append(None)
                continue
            ordered, _ = top_k(d, len(d))
            cols[dim].append(ordered.reshape(-1).tolist())
    return pa.table(cols, schema=FULL_DIAGRAM_SCHEMA)


_ROI_CACHE: dict[str, RoiBackend] = {}


def cached_roi(entry: RoiEntry, params: dict[str, Any]) -> RoiBackend:
    """One ROI backend per worker process (a model is loaded once, not per chunk).

    The driver ships the registry entry itself, so a backend registered only in the driver (a plug-in, a test)
    runs on workers too.
    """
    key = f"{entry.name}:{sorted(params.items())}"
    if key not in _ROI_CACHE:
        _ROI_CACHE[key] = entry.build(**params)
    return _ROI_CACHE[key]


def process_chunk(
    task: ChunkTask, payloads: Sequence[Payload], roi: RoiEntry, roi_params: dict[str, Any]
) -> ChunkResult:
    """The whole chunk on one CPU worker (ROI backends that need no GPU)."""
    return finish(task, prepare(task, payloads, cached_roi(roi, roi_params)))


def prepare_part(
    task: ChunkTask, lo: int, hi: int, payloads: Sequence[Payload], roi: RoiEntry, roi_params: dict[str, Any]
) -> list[Prepared]:
    """Decode and mask samples ``[lo, hi)`` of a chunk, whose ``payloads`` these are (a tail chunk spread out)."""
    sub = replace(task, prefailed=task.prefailed[lo:hi], records=task.records[lo:hi], start=task.start + lo)
    return prepare(sub, payloads, cached_roi(roi, roi_params))


def finish_parts(task: ChunkTask, *parts: list[Prepared]) -> ChunkResult:
    """:func:`finish` of a chunk prepared in slices by :func:`prepare_part`, in slice order."""
    return finish(task, [p for part in parts for p in part])


def part_range(n: int, part: int, parts: int) -> tuple[int, int]:
    """``[lo, hi)`` of slice ``part`` when ``n`` samples are cut into ``parts`` near-equal contiguous slices."""
    return part * n // parts, (part + 1) * n // parts


def tail_parts(todo: Sequence[int], workers: int) -> dict[int, int]:
    """How many slices each chunk of the last, partial round is cut into so that no worker waits idle.

    Chunks are issued in order and take about the same time; with ``len(todo) % workers`` chunks left for the last
    round the other workers would sit idle for a whole chunk. Those chunks are cut so that the last round has at
    least ``workers`` tasks (a chunk's pixels are still written by one task: the store layout does not change).
    """
    if workers <= 1 or not todo:
        return {}
    n_tail = len(todo) % workers if len(todo) >= workers else len(todo)
    if n_tail == 0:
        return {}
    parts = -(-workers // n_tail)
    return {c: parts for c in todo[len(todo) - n_tail :]}
