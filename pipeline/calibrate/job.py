"""The calibration job: check the arguments, sample the split, run the blocks (resuming), write the results."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gudhi
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from topo.pipeline.augment import DEFAULT_COMBINATIONS, Combination, combination_name, parse_combination
from topo.pipeline.calibrate.blocks import _part_key, _run_blocks
from topo.pipeline.calibrate.delta import DELTA_DEFINITION, METHOD_VERSION, SCALE_DEFINITION
from topo.pipeline.calibrate.display import plot_calibration
from topo.pipeline.calibrate.grid_and_bands import DEFAULT_BANDS, DEFAULT_GRID, _check_bands, _check_grid
from topo.pipeline.calibrate.tables import derive_ranges, ranges_from_json, summarize
from topo.pipeline.ray_runtime import RayResources
from topo.store_schema import Store, StoreError, StoreFiles, open_store
from topo.store_schema.lock import writer_lock
from topo.store_schema.store import write_bytes_atomic, write_table_atomic

DEFAULT_BLOCK_SIZE = 16


class CalibrationConfigError(StoreError, ValueError):
    """The store holds calibration results of another configuration (re-run with ``overwrite=True``)."""


@dataclass
class CalibrationResult:
    """What :func:`run_calibration` did and produced.

    Attributes:
        store_path: the calibrated store.
        deltas: raw δ rows (``PART_SCHEMA``), also in ``StoreFiles.CALIBRATION_DELTAS``.
        table: per (combination, s) summary, also in ``StoreFiles.CALIBRATION_TABLE``.
        ranges_table: per (combination, band) ranges with reasons, also in ``StoreFiles.CALIBRATION_RANGES``.
        ranges: ``{combination: {band: (lo, hi) | None}}`` as :func:`load_ranges` returns it.
        plot_path: the δ-vs-s figure, or ``None`` if not drawn.
        num_images: images calibrated.
        num_configs: (combination, s) pairs per image.
        blocks_total: blocks of images in the job.
        blocks_resumed: blocks found finished from an earlier run and skipped.
        evaluations: δ evaluations computed by this run (resumed blocks excluded).
        wall_s: wall time of the job in seconds (including tables and plot).
    """

    store_path: Path
    deltas: pa.Table
    table: pa.Table
    ranges_table: pa.Table
    ranges: dict[str, dict[str, tuple[float, float] | None]]
    plot_path: Path | None
    num_images: int
    num_configs: int
    blocks_total: int
    blocks_resumed: int
    evaluations: int
    wall_s: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def evaluations_per_s(self) -> float:
        """δ evaluations per second computed by this run."""
        return self.evaluations / self.wall_s if self.wall_s > 0 else 0.0


def select_samples(labels: np.ndarray, candidates: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """A class-stratified, seeded choice of ``samples`` indices among ``candidates`` (all if fewer), sorted.

    Each class gets its proportional share (largest remainders, ties to the smaller class id), drawn without
    replacement with ``numpy.random.default_rng(seed)``.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if samples >= len(candidates):
        return np.sort(candidates)
    lab = np.asarray(labels)[candidates]
    classes, counts = np.unique(lab, return_counts=True)
    exact = counts * samples / counts.sum()
    take = np.floor(exact).astype(int)
    rest = samples - int(take.sum())
    order = np.lexsort((classes, -(exact - take)))  # largest fractional part first, then class id
    take[order[:rest]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(candidates[lab == c], size=int(k), replace=False) for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


_CONFIG_KEY = StoreFiles.CALIBRATION_CONFIG


def run_calibration(
    store_path: str | os.PathLike[str],
    *,
    combinations: Iterable[Combination | str] = DEFAULT_COMBINATIONS,
    grid: Sequence[float] | int = DEFAULT_GRID,
    samples: int = 256,
    seed: int = 0,
    split: str = "train",
    bands: Mapping[str, Sequence[float]] = DEFAULT_BANDS,
    full_image: bool = False,
    resources: RayResources = RayResources(),
    progress: bool = True,
    overwrite: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
    plot: bool = True,
    plot_path: str | os.PathLike[str] | None = None,
) -> CalibrationResult:
    """Calibrate augmentation intensities on a store and write the tables and ranges into it.

    Args:
        store_path: a finished store in a local directory (the results are written into it).
        combinations: operator combinations (tuples of names or ``+``-joined strings).
        grid: intensities in (0, 1], strictly increasing, or a count n for ``1/n, 2/n, …, 1``.
        samples: images to use, stratified by class; all usable images of the split if fewer.
        seed: seeds the sample choice and every augmentation (with the sample, combination and s).
        split: the store split to draw from.
        bands: ``{name: (lo, hi)}`` target δ bands, non-overlapping.
        full_image: ignore the ROI (the paper's ablation).
        resources: where Ray runs (started here unless already up).
        progress: show a progress bar on stderr.
        overwrite: discard earlier calibration results (of any configuration) and start from scratch;
            without it, the same configuration resumes and another one is refused.
        block_size: images per Ray task (and per resumable part).
        plot: draw the δ-vs-s figure.
        plot_path: where to draw it; default ``<store>.calibration.png`` beside the store.

    Returns:
        A :class:`CalibrationResult`.

    Raises:
        ValueError: a bad argument (the message names it and the valid options).
        CalibrationConfigError: earlier results with another configuration exist and ``overwrite`` is false.
        StoreError: the store is missing, unfinished, or not a local directory.
    """
    t0 = time.perf_counter()
    combos = [parse_combination(c) for c in combinations]
    names = [combination_name(c) for c in combos]
    if not combos:
        raise ValueError("combinations must name at least one combination")
    if len(set(names)) != len(names):
        raise ValueError(f"combinations must be distinct, got {names}")
    grid_t = _check_grid(grid)
    bands_t = _check_bands(bands)
    if int(samples) < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if int(block_size) < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")

    store = open_store(store_path)
    try:
        root = store.location.local_dir
    except ValueError as e:
        raise StoreError(f"calibration writes into the store, which must be a local directory: {e}") from e
    if not store.is_complete:
        raise StoreError(f"{root}: the store's build has not finished; finish build-store before calibrating")
    candidates = store.indices(split)  # raises ValueError naming the store's splits
    if len(candidates) == 0:
        raise ValueError(f"split {split!r} of {root} has no usable samples (status ok or fallback)")
    labels = store.array("labels")[:]
    chosen = select_samples(labels, candidates, int(samples), int(seed))
    store = open_store(root, mode="r+")  # only now, with every argument checked, open it for writing

    config = {
        "method_version": METHOD_VERSION,
        "store_fingerprint": store.fingerprint,
        "persistence": store.persistence_spec,
        "combinations": names,
        "grid": list(grid_t),
        "samples": int(samples),
        "seed": int(seed),
        "split": split,
        "bands": {k: list(v) for k, v in bands_t.items()},
        "full_image": bool(full_image),
        "block_size": int(block_size),
    }
    config = json.loads(json.dumps(config))
    with writer_lock(root, "calibrate-aug"):
        _claim_config(store, root, config, overwrite)

        bs = int(block_size)
        blocks = [chosen[i : i + bs].tolist() for i in range(0, len(chosen), bs)]
        n_cfg = len(combos) * len(grid_t)
        done = {b for b in range(len(blocks)) if (root / _part_key(b)).exists()}
        todo = [b for b in range(len(blocks)) if b not in done]

        evaluations = 0
        if todo:  # a fully resumed run needs no Ray at all
            evaluations = _run_blocks(
                root, blocks, todo, done, combos, grid_t, int(seed), bool(full_image), resources, progress
            )

        deltas = pa.concat_tables([pq.read_table(root / _part_key(b)) for b in range(len(blocks))])
        table = summarize(deltas, names, grid_t)
        ranges_table, ranges_json = derive_ranges(table, bands_t)
        write_table_atomic(root / StoreFiles.CALIBRATION_DELTAS, deltas)
        write_table_atomic(root / StoreFiles.CALIBRATION_TABLE, table)
        write_table_atomic(root / StoreFiles.CALIBRATION_RANGES, ranges_table)

        out_png: Path | None = None
        if plot:
            out_png = Path(plot_path) if plot_path is not None else root.with_name(root.name + ".calibration.png")
            plot_calibration(table, out_png, bands=bands_t, ranges=ranges_json)

        store.update_attrs(
            calibration={
                "tables": {
                    "deltas": StoreFiles.CALIBRATION_DELTAS,
                    "table": StoreFiles.CALIBRATION_TABLE,
                    "ranges": StoreFiles.CALIBRATION_RANGES,
                },
                "config": config,
                "bands": config["bands"],
                "grid": config["grid"],
                "seed": config["seed"],
                "samples": {"requested": int(samples), "used": len(chosen)},
                "split": split,
                "combinations": names,
                "full_image": bool(full_image),
                "definition": {"delta": DELTA_DEFINITION, "scale": SCALE_DEFINITION},
                "ranges": ranges_json,
                "gudhi_version": gudhi.__version__,
            }
        )
        return CalibrationResult(
            store_path=root,
            deltas=deltas,
            table=table,
            ranges_table=ranges_table,
            ranges=ranges_from_json(ranges_json),
            plot_path=out_png,
            num_images=len(chosen),
            num_configs=n_cfg,
            blocks_total=len(blocks),
            blocks_resumed=len(done),
            evaluations=evaluations,
            wall_s=time.perf_counter() - t0,
            config=config,
        )


def _claim_config(store: Store, root: Path, config: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix with earlier results of another configuration; record this one.

    The same configuration resumes (finished parts are kept); ``overwrite`` always starts from scratch.
    """
    cfg_path = root / _CONFIG_KEY
    old: dict[str, Any] | None = None
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
    elif isinstance(store.attrs.get("calibration"), dict):
        old = store.attrs["calibration"].get("config")
    if old is not None and old != config and not overwrite:
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise CalibrationConfigError(
            f"{root} holds calibration results made with another configuration (differs in: "
            f"{', '.join(diff)}); re-run with the same settings to resume, or pass overwrite=True "
            "(--overwrite) to discard them"
        )
    if overwrite or old != config:
        # Start clean: no part of another configuration may survive into this run's tables.
        shutil.rmtree(root / StoreFiles.CALIBRATION_PARTS, ignore_errors=True)
        for key in (
            StoreFiles.CALIBRATION_DELTAS,
            StoreFiles.CALIBRATION_TABLE,
            StoreFiles.CALIBRATION_RANGES,
        ):
            (root / key).unlink(missing_ok=True)
    if not cfg_path.exists():
        write_bytes_atomic(cfg_path, json.dumps(config, indent=2, sort_keys=True).encode())
