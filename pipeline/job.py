"""``topo build-store``: the Ray job that turns a dataset into a store.

The driver lists the records, creates the store (or reopens it to resume), then streams chunks through Ray with
a bounded number in flight: the driver reads a chunk's raw payloads, a CPU task decodes, masks (Otsu/none),
computes persistence and writes the chunk. With ``roi="sam"``, decoding and masking happen on SAM actors (one per
GPU) and a CPU task finishes the chunk. Chunks whose completion record exists are skipped, so re-running the same
command resumes. The manifest, checksums and fingerprint are written by the driver once every chunk is done.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from topo.pipeline import chunk as chunk_mod
from topo.pipeline import resume_inputs
from topo.pipeline.build_config import BuildConfig, BuildError
from topo.pipeline.decode import DRAFT_METHOD
from topo.pipeline.first_failure import Failure, FirstFailure, recorded_failure
from topo.pipeline.ray_runtime import cluster_cpus, cluster_gpus, ensure_ray
from topo.pipeline.roi import roi_entry
from topo.pipeline.roi.quality import resolve_policy
from topo.pipeline.roi_actors import roi_actors
from topo.pipeline.sources import SampleRecord, Source, SourceInfo, get_source
from topo.store_schema import (
    IMAGE_CODECS,
    SCHEMA_VERSION,
    Geometry,
    Store,
    StoreError,
    StoreFiles,
    create_store,
    open_store,
    remove_store,
)
from topo.store_schema.fingerprint import fingerprint
from topo.store_schema.lock import lease_of_this_process, writer_lock
from topo.store_schema.provenance import now, versions
from topo.store_schema.seal import seal
from topo.store_schema.store import write_table_atomic

DEFAULT_FILE_IMAGE_SIZE = 224


@dataclass
class BuildSummary:
    """What a build did: completion, counts by status, chunks computed and skipped, time, fingerprint."""

    store: Path
    complete: bool
    num_samples: int
    counts: dict[str, int]
    chunks_computed: int
    chunks_skipped: int
    seconds: float
    fingerprint: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    ray_start_seconds: float = 0.0  # part of ``seconds`` spent starting Ray (0 when it was already up)
    samples_computed: int = 0  # samples in the chunks computed by this run

    @property
    def images_per_second(self) -> float | None:
        """Samples computed now per second of job time, Ray's start-up left out (it is reported on its own)."""
        work = self.seconds - self.ray_start_seconds
        return self.samples_computed / work if self.samples_computed and work > 0 else None


def check_records(records: list[SampleRecord], num_classes: int) -> list[str | None]:
    """Reasons known before decoding: duplicate ids and labels outside the class list."""
    seen: dict[str, int] = {}
    out: list[str | None] = []
    for i, r in enumerate(records):
        if r.problem is not None:
            out.append(r.problem)
            continue
        if r.sample_id in seen:
            out.append(f"duplicate sample_id (first at index {seen[r.sample_id]})")
            continue
        seen[r.sample_id] = i
        out.append(None if 0 <= r.label < num_classes else f"label {r.label} out of range [0, {num_classes})")
    return out


def _geometry(cfg: BuildConfig, source: Source, n: int) -> Geometry:
    info = source.info()
    size = cfg.image_size or info.image_size or DEFAULT_FILE_IMAGE_SIZE
    return Geometry(n, size, size, info.channels, cfg.filtration.k0, cfg.filtration.k1, cfg.chunk_size)


def roi_polarity(params: dict[str, Any], info: SourceInfo) -> str:
    """The lesions' polarity the quality checks assume: the ROI's own setting, else what the dataset declares."""
    return str(params.get("polarity") or info.extra.get("roi_polarity", "auto"))


def _roi_spec(cfg: BuildConfig, info: SourceInfo) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(parameters for the backend constructor, what the build config records, what the attributes show)."""
    params = dict(cfg.roi_params)
    if cfg.roi == "otsu" and "polarity" not in params and info.extra.get("roi_polarity"):
        params["polarity"] = info.extra["roi_polarity"]  # a dataset that knows its lesions' polarity says so
    try:
        suspect = resolve_policy(cfg.roi_suspect, roi_polarity(params, info))
        params, record, attrs = roi_entry(cfg.roi).spec(params)
    except ValueError as e:
        raise BuildError(str(e)) from None
    return params, {**record, "suspect": suspect}, {**attrs, "suspect": suspect}


def build_store(cfg: BuildConfig, console: Console | None = None) -> BuildSummary:
    """Build (or resume building) the store described by ``cfg``, holding the store's writer lock meanwhile."""
    if cfg.image_codec not in IMAGE_CODECS:
        raise ValueError(f"unknown image codec {cfg.image_codec!r}; valid: {', '.join(IMAGE_CODECS)}")
    with writer_lock(cfg.out, "build-store"):
        return _build_store(cfg, console or Console(stderr=True))


def _build_store(cfg: BuildConfig, console: Console) -> BuildSummary:
    import time

    t0 = time.perf_counter()
    source = get_source(cfg.dataset, data_dir=cfg.data_dir, size=cfg.size, download=cfg.download, seed=cfg.split_seed)
    info = source.info()
    records = source.records()
    if cfg.limit is not None:
        records = records[: cfg.limit]
    if not records:
        raise BuildError(f"{cfg.dataset}: no samples found")
    prefailed = check_records(records, len(info.class_names))
    geometry = _geometry(cfg, source, len(records))
    roi_params, roi_record, roi_attrs = _roi_spec(cfg, info)
    build_config = {
        "schema_major": int(SCHEMA_VERSION.split(".")[0]),
        "dataset": info.name,
        "source": source.content_options(),
        "limit": cfg.limit,
        "geometry": {k: v for k, v in geometry.to_json().items() if k != "chunk_size"},
        "chunk_size": geometry.chunk_size,
        "image_codec": cfg.image_codec,
        "jpeg_draft": DRAFT_METHOD if cfg.jpeg_draft else False,  # the pixels differ: a resume must not mix them
        "roi": roi_record,
        "persistence": cfg.filtration.to_json(),
    }
    if cfg.overwrite:
        # Never delete a directory that is not recognisably a topo store (or an empty/partial one), whatever --out
        # names.
        try:
            remove_store(cfg.out)
        except StoreError as e:
            raise BuildError(f"--overwrite: {e}") from None
    attrs = {
        "dataset": info.to_json(),
        "persistence": cfg.filtration.to_json(),
        "roi": roi_attrs,
        "provenance": {"created": now(), "versions": versions()},
        "calibration": None,
    }
    store = create_store(cfg.out, geometry, attrs, build_config=build_config, image_codec=cfg.image_codec)
    for line in source.warnings():
        console.print(f"[yellow]warning:[/] {line}")
    if info.non_commercial:
        console.print(f"[yellow]note:[/] {info.name} is licensed {info.license}: non-commercial use only.")
    if store.is_complete:
        shutil.rmtree(Path(cfg.out) / StoreFiles.CHUNK_PARTS, ignore_errors=True)  # a kill during finalise's cleanup
        console.print(f"{cfg.out} is already complete; nothing to do (use --overwrite to rebuild).")
        return _summary_from_store(store, 0, geometry.num_chunks, time.perf_counter() - t0)

    resume_inputs.check_or_record(cfg.out, resume_inputs.listing(source, records))  # never mix two datasets
    done = {c for c in range(geometry.num_chunks) if (Path(cfg.out) / StoreFiles.chunk_part(c)).exists()}
    todo = [c for c in range(geometry.num_chunks) if c not in done]
    first = FirstFailure()  # offered failures only under --strict
    if cfg.strict:
        # A finished chunk's failure still counts (an earlier --strict run stopped at it); only the chunks before
        # the lowest such failure can hold an earlier one.
        for c in sorted(done):
            first.offer(recorded_failure(Path(cfg.out), c))
        todo = [c for c in todo if first.matters(c)]
    if cfg.max_chunks is not None:
        todo = todo[: cfg.max_chunks]

    counts: Counter[str] = Counter()
    failures: list[tuple[str, str]] = []
    t_ray = time.perf_counter()
    ensure_ray(cfg.resources)
    ray_start = time.perf_counter() - t_ray
    try:
        computed = _run_chunks(
            cfg,
            store,
            source,
            records,
            prefailed,
            geometry,
            todo,
            roi_params,
            counts,
            failures,
            info.split_names,
            console,
            first,
        )
    finally:
        source.close()
    summary = BuildSummary(
        Path(cfg.out), False, geometry.num_samples, dict(counts), computed, len(done), 0.0, None, failures
    )
    if len(done) + computed == geometry.num_chunks:
        fp = _finalize(store, build_config, geometry)
        summary = _summary_from_store(open_store(cfg.out), computed, len(done), 0.0)
        summary.fingerprint = fp
        summary.failures = failures
    summary.seconds = time.perf_counter() - t0
    summary.ray_start_seconds = ray_start
    summary.samples_computed = sum(counts.values())  # every computed chunk adds its samples' statuses
    return summary


def _run_chunks(
    cfg: BuildConfig,
    store: Store,
    source: Source,
    records: list[SampleRecord],
    prefailed: list[str | None],
    g: Geometry,
    todo: list[int],
    roi_params: dict[str, Any],
    counts: Counter[str],
    failures: list[tuple[str, str]],
    split_names: tuple[str, ...],
    console: Console,
    first: FirstFailure,
) -> int:
    cpus = cluster_cpus()
    suspect, polarity = store.attrs["roi"].get("suspect", "keep"), roi_polarity(roi_params, source.info())
    actors = roi_actors(roi_entry(cfg.roi), roi_params, cpus)
    cpu_workers = max(1, cpus - (0 if cluster_gpus() or not actors else len(actors)))
    max_in_flight = cfg.max_in_flight or 2 * cpu_workers + 2 * len(actors)
    process = ray.remote(num_cpus=1, max_retries=3)(chunk_mod.process_chunk)
    finish = ray.remote(num_cpus=1, max_retries=3)(chunk_mod.finish)
    prepare_part = ray.remote(num_cpus=1, max_retries=3)(chunk_mod.prepare_part)
    finish_parts = ray.remote(num_cpus=1, max_retries=3)(chunk_mod.finish_parts)
    split = {} if actors else chunk_mod.tail_parts(todo, cpu_workers)

    in_flight: dict[Any, int] = {}
    found: list[tuple[int, tuple[str, str]]] = []  # (chunk, its first failure)
    computed = 0
    progress = Progress(
        TextColumn("[bold]build-store"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("samples · {task.fields[rate]} · failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not cfg.progress,
    )
    todo_samples = sum(min(g.chunk_size, g.num_samples - c * g.chunk_size) for c in todo)
    t_start = time.perf_counter()
    with progress:
        bar = progress.add_task("build", total=todo_samples, rate="-", failed=0)

        def collect(ready: list[Any]) -> None:
            nonlocal computed
            for ref in ready:
                c = in_flight.pop(ref)
                if cfg.strict and not first.matters(c):
                    continue  # cancelled (or finished regardless): past the first failure, it changes nothing
                res: chunk_mod.ChunkResult = ray.get(ref)
                computed += 1
                counts.update(res.counts)
                if res.first_failure:
                    found.append((c, res.first_failure))
                done = progress.tasks[0].completed + res.n
                rate = done / max(1e-9, time.perf_counter() - t_start)
                progress.update(bar, advance=res.n, rate=f"{rate:.0f}/s", failed=counts["failed"])
                if cfg.strict and res.first_failure:
                    sid, reason = res.first_failure
                    index = res.first_failure_index if res.first_failure_index is not None else g.chunk_range(c)[0]
                    first.offer(Failure(index, c, sid, reason))
                    for r, rc in in_flight.items():
                        if not first.matters(rc):
                            ray.cancel(r)

        for i, (c, payloads) in enumerate(_payloads(source, records, g, todo)):
            while len(in_flight) >= max_in_flight and first.matters(c):
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                collect(ready)
            if not first.matters(c):
                break  # chunks are issued in index order: every chunk before the failure is already out
            start, stop = g.chunk_range(c)
            task = chunk_mod.ChunkTask(
                store_path=str(Path(store.location.path).resolve()),
                chunk=c,
                start=start,
                records=tuple((r.sample_id, r.source_ref, r.label, r.split) for r in records[start:stop]),
                prefailed=tuple(prefailed[start:stop]),
                geometry=g.to_json(),
                filtration=store.persistence_spec,
                split_names=split_names,
                lease=lease_of_this_process(),  # a task outliving a killed driver must not write
                roi_suspect=suspect,
                roi_polarity=polarity,
                jpeg_draft=cfg.jpeg_draft,
            )
            if actors:
                prepared = actors[i % len(actors)].prepare.remote(task, payloads)
                ref = finish.remote(task, prepared)
            elif c in split:
                cuts = [chunk_mod.part_range(len(payloads), k, split[c]) for k in range(split[c])]
                entry = roi_entry(cfg.roi)
                refs = [prepare_part.remote(task, lo, hi, payloads[lo:hi], entry, roi_params) for lo, hi in cuts]
                ref = finish_parts.remote(task, *refs)
            else:
                ref = process.remote(task, payloads, roi_entry(cfg.roi), roi_params)
            in_flight[ref] = c
        # With --strict, only the chunks before the lowest failure are waited for: one of them may fail earlier.
        while pending := [r for r, rc in in_flight.items() if first.matters(rc)]:
            ready, _ = ray.wait(pending, num_returns=1)
            collect(ready)
    failures.extend(f for _, f in sorted(found, key=lambda cf: cf[0]))  # index order, not the order of finishing
    if first.best is not None:
        raise BuildError(first.best.message())
    return computed


def _payloads(source: Source, records: list[SampleRecord], g: Geometry, todo: list[int]) -> Iterator[tuple[int, list]]:
    for c in todo:
        start, stop = g.chunk_range(c)
        yield c, list(source.payloads(records[start:stop]))


def _finalize(store: Store, build_config: dict[str, Any], g: Geometry) -> str:
    root = Path(store.location.path)
    parts = [pq.read_table(root / StoreFiles.chunk_part(c)) for c in range(g.num_chunks)]
    manifest = pa.concat_tables(parts).sort_by("index")
    if manifest.num_rows != g.num_samples:
        raise BuildError(f"manifest parts hold {manifest.num_rows} rows, expected {g.num_samples}")
    sums = pa.concat_tables([pq.read_table(root / StoreFiles.chunk_sums(c)) for c in range(g.num_chunks)])
    rows = zip(
        manifest["sample_id"].to_pylist(),
        manifest["input_sha256"].to_pylist(),
        manifest["label"].to_pylist(),
        manifest["split"].to_pylist(),
        strict=True,
    )
    # Chunk size is layout, not content (the fingerprint's documented contract): same data, same fingerprint.
    # How the samples are laid out (chunking, codec) is not what they are: a re-chunked or re-encoded store keeps its
    # identity.
    fp = fingerprint({k: v for k, v in build_config.items() if k not in ("chunk_size", "image_codec")}, rows)
    write_table_atomic(root / StoreFiles.MANIFEST, manifest)
    write_table_atomic(root / StoreFiles.CHECKSUMS, sums.sort_by([("array", "ascending"), ("chunk", "ascending")]))
    status = Counter(manifest["status"].to_pylist())
    done = {
        "fingerprint": fp,
        "build": {"complete": True, "num_chunks": g.num_chunks, "finished": now(), "counts": dict(status)},
    }
    store.update_attrs(**done, integrity=seal(store.location, {**store.attrs, **done}))  # one write: sealed or not
    shutil.rmtree(root / StoreFiles.CHUNK_PARTS, ignore_errors=True)
    return fp


def _summary_from_store(store: Store, computed: int, skipped: int, seconds: float) -> BuildSummary:
    counts = dict(store.attrs.get("build", {}).get("counts", {}))
    return BuildSummary(
        Path(store.location.path), True, store.num_samples, counts, computed, skipped, seconds, store.fingerprint
    )
