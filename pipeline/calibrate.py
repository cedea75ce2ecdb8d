"""How much an augmentation changes an image's topology, and which intensities give topo-weak/strong views.

**The relative bottleneck distance.** For an image x with ROI mask m and an augmentation T,

    δ_k(x, T) = d_B(PD_k(x), PD_k(T(x))) / scale(PD(x))     for k = 0 (H0) and k = 1 (H1),
    δ(x, T)   = max(δ_0, δ_1).

* **Diagrams.** PD(x) is the store's top-k diagram of x (``pd_h0``/``pd_h1``, the k0/k1 most persistent pairs
  of the cubical filtration restricted to the ROI; see :mod:`topo.pipeline.persistence`). PD(T(x)) is
  computed the same way (:func:`~topo.pipeline.persistence.topk_diagrams`) on the transformed image inside the
  transformed ROI: geometric operators move the mask with the image, the others keep it. With
  ``full_image=True`` (the paper's ablation) both diagrams are computed on the whole image, ignoring the mask.
* **Distance.** d_B is GUDHI's bottleneck distance with the L∞ ground metric, computed exactly (``e=0``;
  GUDHI's default ``e=None`` is a near-exact mode that returns 1e-308 instead of 0 for equal diagrams). An
  unmatched pair (b, d) goes to the diagonal at cost (d − b)/2.
* **Scale.** scale(PD(x)) = max death − min birth over all pairs of H0 ∪ H1 of x: the filtration range the
  diagram spans. H0 and H1 share it, so their δ are comparable. Because the essential H0 class is born at the
  ROI's minimum and (capped) dies at its maximum, the scale equals the length of the essential bar, i.e. the
  ROI's grey-level range. It is floored at 1/255 (one grey level) so that a constant ROI gives a finite δ.
* **Essential class.** The H0 class that never dies (and any class that only dies when the excluded background
  enters) is stored with death = the maximum filtration value inside the ROI, so every point is finite and is
  matched like any other. An augmentation that stretches or shifts the ROI's value range therefore moves the
  essential point, and d_B sees that change.
* **Top-k truncation.** Pairs beyond the top k are dropped from both diagrams. This changes d_B by at most
  half the sum of the persistences of the first dropped pair of each diagram (triangle inequality).

**Calibration** (:func:`run_calibration`) evaluates δ for every (combination, s) of a grid on a
class-stratified sample of one split, on Ray tasks over blocks of images, and writes three Parquet tables
into the store: the raw δ rows, their summary per (combination, s), and the derived s-ranges: for each
combination, the interval of s whose median δ (made monotone in s by isotonic regression and interpolated on
a fine grid) lies in each band (topo-weak 5–15 %, topo-strong 15–25 % by default). The ranges are also stored
as plain JSON in the store's ``calibration`` attribute, which :func:`load_ranges` reads for the trainer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gudhi
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from topo.pipeline.augment import (
    DEFAULT_COMBINATIONS,
    Combination,
    apply,
    combination_name,
    parse_combination,
)
from topo.pipeline.persistence import FiltrationSpec, topk_diagrams
from topo.pipeline.ray_runtime import RayResources, cluster_cpus, ensure_ray
from topo.store_schema import Store, StoreError, StoreFiles, open_store
from topo.store_schema.store import write_bytes_atomic, write_table_atomic

DEFAULT_GRID: tuple[float, ...] = (0.03, 0.06, 0.1, 0.16, 0.25, 0.4, 0.63, 1.0)
"""Eight intensities in (0, 1], roughly log-spaced: weak bands sit at small s for most operators."""

DEFAULT_BANDS: dict[str, tuple[float, float]] = {"weak": (0.05, 0.15), "strong": (0.15, 0.25)}
"""Target δ bands: topo-weak 5–15 %, topo-strong 15–25 %."""

DEFAULT_BLOCK_SIZE = 16
SCALE_FLOOR = 1.0 / 255.0
FINE_GRID_POINTS = 1001
METHOD_VERSION = 1  # bump when δ's computation changes, so old parts are not mixed with new ones

DELTA_DEFINITION = (
    "delta_k(x,T) = d_B(PD_k(x), PD_k(T(x))) / scale(PD(x)) for k in {H0, H1}; "
    "delta = max(delta_H0, delta_H1). PD: top-k cubical diagrams on the ROI (T(x) on the transformed ROI), "
    "infinite deaths capped at the ROI's maximum filtration value. "
    "d_B: GUDHI exact bottleneck distance (e=0, L-infinity ground metric)."
)
SCALE_DEFINITION = (
    "scale(PD(x)) = max death - min birth over H0 and H1 of x (= the length of the capped essential H0 bar, "
    "the ROI's filtration range), floored at 1/255."
)

PART_SCHEMA = pa.schema(
    [
        pa.field("index", pa.int64(), nullable=False),  # sample index in the store
        pa.field("label", pa.int32(), nullable=False),
        pa.field("combination", pa.string(), nullable=False),
        pa.field("s", pa.float64(), nullable=False),
        pa.field("delta", pa.float64()),  # NaN if T(x) left an empty ROI
        pa.field("delta_h0", pa.float64()),
        pa.field("delta_h1", pa.float64()),
    ]
)


class CalibrationConfigError(StoreError, ValueError):
    """The store holds calibration results of another configuration (re-run with ``overwrite=True``)."""


# --- δ ------------------------------------------------------------------------------------------------------


class Delta(NamedTuple):
    """Relative bottleneck distances: per homology dimension and overall (their maximum)."""

    h0: float
    h1: float
    overall: float


Diagrams = tuple[np.ndarray, np.ndarray]
"""(H0, H1) diagrams, valid rows only: arrays of shape (n, 2) of (birth, death)."""


def diagram_scale(pd_x: Diagrams) -> float:
    """scale(PD(x)) = max death − min birth over H0 ∪ H1, floored at 1/255 (see the module docstring)."""
    pts = np.concatenate([np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in pd_x])
    if pts.size == 0:
        return SCALE_FLOOR
    return max(float(pts[:, 1].max() - pts[:, 0].min()), SCALE_FLOOR)


def _bottleneck(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    if a.shape == b.shape and np.array_equal(a, b):
        return 0.0  # equal diagrams (every exact homeomorphism): no matching needed, 0 is exact
    # e=0 is GUDHI's exact algorithm; the default e=None returns a denormal (1e-308) for equal diagrams.
    return float(gudhi.bottleneck_distance(a, b, 0.0))


def relative_bottleneck(pd_x: Diagrams, pd_tx: Diagrams) -> Delta:
    """δ between the diagrams of x and T(x), relative to scale(PD(x)).

    Args:
        pd_x: ``(h0, h1)`` of x, valid rows only.
        pd_tx: ``(h0, h1)`` of T(x), valid rows only.

    Returns:
        ``Delta(h0, h1, overall)`` with ``overall = max(h0, h1)``.
    """
    scale = diagram_scale(pd_x)
    d0 = _bottleneck(pd_x[0], pd_tx[0]) / scale
    d1 = _bottleneck(pd_x[1], pd_tx[1]) / scale
    return Delta(d0, d1, max(d0, d1))


def config_rng(seed: int, index: int, combination: Combination | str, s: float) -> np.random.Generator:
    """The generator of one (seed, sample, combination, s): independent of scheduling and of grid order."""
    words = [int(seed), int(index), _stable_word(combination_name(combination)), _stable_word(repr(float(s)))]
    return np.random.default_rng(np.random.SeedSequence(words))


def _stable_word(text: str) -> int:
    # Python's hash() is salted per process; a digest is the same on every worker and every run.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _valid(topk: Any, i: int) -> Diagrams:
    return topk.h0[i, : topk.n_h0[i]], topk.h1[i, : topk.n_h1[i]]


def _deltas(
    image: np.ndarray,
    mask: np.ndarray | None,
    pd_x: Diagrams | None,
    configs: Sequence[tuple[Combination, float, np.random.Generator]],
    spec: FiltrationSpec,
    full_image: bool,
) -> list[Delta]:
    """δ of one image for many (combination, s, rng): all T(x) diagrams in one GUDHI call."""
    if full_image or pd_x is None:
        pd_x = _valid(topk_diagrams([image], [None if full_image else mask], spec), 0)
    images, masks, ok = [], [], []
    for combo, s, rng in configs:
        t_img, t_mask = apply(combo, image, mask, s, rng)
        if full_image:
            t_mask = None
        good = t_mask is None or bool(np.any(t_mask))
        ok.append(good)
        if good:
            images.append(t_img)
            masks.append(t_mask)
    tk = topk_diagrams(images, masks, spec) if images else None
    out, j = [], 0
    for good in ok:
        if not good:  # the transform emptied the ROI: there is no diagram to compare
            out.append(Delta(math.nan, math.nan, math.nan))
            continue
        out.append(relative_bottleneck(pd_x, _valid(tk, j)))
        j += 1
    return out


def delta_for_image(
    image: np.ndarray,
    mask: np.ndarray | None,
    pd_x: Diagrams | None,
    combination: Combination | str,
    s: float,
    rng: np.random.Generator,
    spec: FiltrationSpec,
    full_image: bool = False,
) -> Delta:
    """δ(x, T) for one image and one (combination, s).

    Args:
        image: uint8 ``HxW`` or ``HxWxC``.
        mask: the stored ROI mask (uint8 ``HxW``), or ``None`` for the whole image.
        pd_x: the stored top-k ``(h0, h1)`` of x, valid rows only; ``None`` recomputes it.
        combination: operator names or a ``+``-joined string.
        s: intensity in ``[0, 1]``.
        rng: randomness of the augmentation.
        spec: the store's filtration.
        full_image: ignore the mask for both diagrams (PD(x) is recomputed on the whole image).

    Returns:
        The :class:`Delta` (NaNs if the transform left an empty ROI).
    """
    return _deltas(image, mask, pd_x, [(parse_combination(combination), float(s), rng)], spec, full_image)[0]


# --- the job ------------------------------------------------------------------------------------------------


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


def _check_grid(grid: Sequence[float] | int) -> tuple[float, ...]:
    if isinstance(grid, int | np.integer):
        if grid < 2:
            raise ValueError(f"grid must have at least 2 intensities, got {grid}")
        return tuple((i + 1) / int(grid) for i in range(int(grid)))
    g = tuple(float(v) for v in grid)
    if len(g) < 2:
        raise ValueError(f"grid must have at least 2 intensities, got {list(g)}")
    bad = [v for v in g if not 0.0 < v <= 1.0]
    if bad:
        raise ValueError(f"grid intensities must lie in (0, 1], got {bad}")
    if list(g) != sorted(set(g)):
        raise ValueError(f"grid intensities must be strictly increasing, got {list(g)}")
    return g


def _check_bands(bands: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    if not bands:
        raise ValueError("bands must name at least one δ band, e.g. {'weak': (0.05, 0.15)}")
    out: dict[str, tuple[float, float]] = {}
    for name, band in bands.items():
        if name in ("reasons", "notes"):
            raise ValueError(f"band name {name!r} is reserved; use another name (e.g. 'weak', 'strong')")
        try:
            lo, hi = (float(v) for v in band)
        except (TypeError, ValueError):
            raise ValueError(f"band {name!r} must be a pair (lo, hi) of δ fractions, got {band!r}") from None
        if not 0.0 <= lo < hi:
            raise ValueError(f"band {name!r} must be (lo, hi) with 0 <= lo < hi, got {tuple(band)}")
        out[str(name)] = (lo, hi)
    ordered = sorted(out.items(), key=lambda kv: kv[1])
    for (n1, b1), (n2, b2) in itertools.pairwise(ordered):
        if b1[1] > b2[0]:
            raise ValueError(f"bands must not overlap: {n1!r} {b1} and {n2!r} {b2}")
    return out


def parse_grid(text: str) -> tuple[float, ...]:
    """A grid from the command line: a count (``"8"`` → 1/8 … 1) or comma-separated intensities.

    Raises:
        ValueError: neither form, or intensities outside (0, 1] or not increasing.
    """
    t = text.strip()
    if t.isdigit():
        return _check_grid(int(t))
    try:
        values = [float(v) for v in t.split(",") if v.strip()]
    except ValueError:
        msg = f"grid must be a count (e.g. 8) or intensities like 0.1,0.2,0.4; got {text!r}"
        raise ValueError(msg) from None
    return _check_grid(values)


def parse_bands(text: str) -> dict[str, tuple[float, float]]:
    """Bands from the command line: ``"weak=0.05:0.15,strong=0.15:0.25"``.

    Raises:
        ValueError: not of that form, or overlapping / empty bands.
    """
    out: dict[str, tuple[float, float]] = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not (sep and sep2 and name.strip()):
                raise ValueError
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ValueError(
                f"bands must look like weak=0.05:0.15,strong=0.15:0.25; cannot read {item!r}"
            ) from None
    return _check_bands(out)


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
    chosen = [
        rng.choice(candidates[lab == c], size=int(k), replace=False)
        for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


_part_key = StoreFiles.calibration_part
_CONFIG_KEY = StoreFiles.CALIBRATION_CONFIG


def compute_block(
    store_path: str,
    indices: Sequence[int],
    combinations: Sequence[Combination],
    grid: Sequence[float],
    seed: int,
    full_image: bool,
) -> pa.Table:
    """δ rows of a block of images for every (combination, s); opens the store itself (any process)."""
    store = open_store(store_path)
    spec = FiltrationSpec.from_json(store.persistence_spec)
    idx = np.asarray(indices, dtype=np.int64)
    images = store.array("images").oindex[idx]
    masks = store.array("roi_masks").oindex[idx]
    labels = store.array("labels").oindex[idx]
    h0, n0 = store.array("pd_h0").oindex[idx], store.array("n_h0").oindex[idx]
    h1, n1 = store.array("pd_h1").oindex[idx], store.array("n_h1").oindex[idx]
    cols: dict[str, list] = {f.name: [] for f in PART_SCHEMA}
    for j, i in enumerate(idx):
        image = images[j]
        if image.shape[-1] == 1:
            image = image[..., 0]
        configs = [(c, s, config_rng(seed, int(i), c, s)) for c in combinations for s in grid]
        deltas = _deltas(image, masks[j], (h0[j, : n0[j]], h1[j, : n1[j]]), configs, spec, full_image)
        for (c, s, _), d in zip(configs, deltas, strict=True):
            cols["index"].append(int(i))
            cols["label"].append(int(labels[j]))
            cols["combination"].append(combination_name(c))
            cols["s"].append(float(s))
            cols["delta"].append(d.overall)
            cols["delta_h0"].append(d.h0)
            cols["delta_h1"].append(d.h1)
    return pa.table(cols, schema=PART_SCHEMA)


@ray.remote(num_cpus=1)
def _calibrate_block_task(
    store_path: str,
    block: int,
    indices: list[int],
    combinations: list[Combination],
    grid: list[float],
    seed: int,
    full_image: bool,
) -> int:
    import cv2

    cv2.setNumThreads(1)  # one Ray CPU per task: OpenCV's own thread pool would oversubscribe the node
    table = compute_block(store_path, indices, combinations, grid, seed, full_image)
    # The worker writes its own part atomically, so a block finished before an interruption is never lost.
    write_table_atomic(Path(store_path) / _part_key(block), table)
    return table.num_rows


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} δ/s" if speed else "… δ/s", style="progress.data.speed")

    return Progress(
        TextColumn("[bold]{task.description}[/bold]"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("image×config"),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


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
    _claim_config(store, root, config, overwrite)

    bs = int(block_size)
    blocks = [chosen[i : i + bs].tolist() for i in range(0, len(chosen), bs)]
    n_cfg = len(combos) * len(grid_t)
    done = {b for b in range(len(blocks)) if (root / _part_key(b)).exists()}
    todo = [b for b in range(len(blocks)) if b not in done]

    evaluations = 0
    if todo:  # a fully resumed run needs no Ray at all
        evaluations = _run_blocks(root, blocks, todo, done, combos, grid_t, int(seed), bool(full_image),
                                  resources, progress)

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
        ranges=_ranges_from_json(ranges_json),
        plot_path=out_png,
        num_images=len(chosen),
        num_configs=n_cfg,
        blocks_total=len(blocks),
        blocks_resumed=len(done),
        evaluations=evaluations,
        wall_s=time.perf_counter() - t0,
        config=config,
    )


def _run_blocks(
    root: Path,
    blocks: list[list[int]],
    todo: list[int],
    done: set[int],
    combos: list[Combination],
    grid: tuple[float, ...],
    seed: int,
    full_image: bool,
    resources: RayResources,
    progress: bool,
) -> int:
    """Run the unfinished blocks as Ray tasks with backpressure and a progress bar; return δ evaluations."""
    n_cfg = len(combos) * len(grid)
    started = ensure_ray(resources)
    evaluations = 0
    pending: list[ray.ObjectRef] = []
    try:
        max_in_flight = max(1, 2 * cluster_cpus())
        with _progress(progress) as bar:
            task = bar.add_task(
                f"calibrate {root.name}",
                total=sum(len(b) for b in blocks) * n_cfg,
                completed=sum(len(blocks[b]) for b in done) * n_cfg,
            )
            queue = list(todo)
            while queue or pending:
                # Backpressure: at most ~2 tasks per CPU in flight, so a large job does not flood Ray.
                while queue and len(pending) < max_in_flight:
                    b = queue.pop(0)
                    pending.append(
                        _calibrate_block_task.remote(
                            str(root), b, blocks[b], [tuple(c) for c in combos], list(grid), seed, full_image
                        )
                    )
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    rows = int(ray.get(ref))
                    evaluations += rows
                    bar.advance(task, rows)
    except BaseException:
        # Interrupted, or a task failed: finished parts stay (a re-run resumes); stop what is still queued.
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()
    return evaluations


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


# --- tables and ranges --------------------------------------------------------------------------------------

_STATS = ("mean", "median", "p10", "p90")


def summarize(deltas: pa.Table, combinations: Sequence[str], grid: Sequence[float]) -> pa.Table:
    """Per (combination, s): ``n`` (finite δ) and mean, median, p10, p90 of δ, δ_H0 and δ_H1."""
    comb = np.asarray(deltas.column("combination").to_pylist(), dtype=object)
    s_col = deltas.column("s").to_numpy()
    vals = {k: deltas.column(k).to_numpy(zero_copy_only=False) for k in ("delta", "delta_h0", "delta_h1")}
    cols: dict[str, list] = {"combination": [], "s": [], "n": []}
    for k in vals:
        for st in _STATS:
            cols[f"{k}_{st}"] = []
    for c in combinations:
        for s in grid:
            sel = (comb == c) & (s_col == s)
            cols["combination"].append(c)
            cols["s"].append(float(s))
            cols["n"].append(int(np.isfinite(vals["delta"][sel]).sum()))
            for k, v in vals.items():
                x = v[sel]
                x = x[np.isfinite(x)]
                stats = (
                    (float(x.mean()), float(np.median(x)), *(float(q) for q in np.percentile(x, [10, 90])))
                    if x.size
                    else (math.nan,) * 4
                )
                for st, val in zip(_STATS, stats, strict=True):
                    cols[f"{k}_{st}"].append(val)
    return pa.table(cols)


_RANGE_SCHEMA = pa.schema(
    [
        ("combination", pa.string()),
        ("band", pa.string()),
        ("lo", pa.float64()),
        ("hi", pa.float64()),
        ("usable", pa.bool_()),
        ("reason", pa.string()),
        ("note", pa.string()),
        ("band_lo", pa.float64()),
        ("band_hi", pa.float64()),
    ]
)


def derive_ranges(
    table: pa.Table, bands: Mapping[str, Sequence[float]] = DEFAULT_BANDS
) -> tuple[pa.Table, dict[str, Any]]:
    """The s-interval of each combination whose (monotone-fitted) median δ lies in each band.

    The median δ is fitted against s with increasing isotonic regression, interpolated linearly on a fine
    grid of ``FINE_GRID_POINTS`` intensities between the smallest and largest grid value (no extrapolation),
    and the band's interval is where the fit lies in ``[lo, hi]``. Because the fit is monotone and the bands
    do not overlap, a lower band's interval lies below a higher band's.

    Returns:
        A table with one row per (combination, band) — ``lo``, ``hi`` (null if unusable), ``usable``,
        ``reason`` (why unusable), ``note`` (e.g. the interval was clipped at the grid's end), ``band_lo``,
        ``band_hi`` — and the same as plain JSON: ``{combination: {band: [lo, hi] | None,
        "reasons": {band: str | None}, "notes": {band: str | None}}}``.
    """
    from sklearn.isotonic import IsotonicRegression

    bands_t = _check_bands(bands)
    comb = table.column("combination").to_pylist()
    s_all = table.column("s").to_numpy()
    med_all = table.column("delta_median").to_numpy(zero_copy_only=False)
    names = list(dict.fromkeys(comb))
    rows: dict[str, list] = {k: [] for k in _RANGE_SCHEMA.names}
    out: dict[str, Any] = {}
    for name in names:
        sel = np.array([c == name for c in comb]) & np.isfinite(med_all)
        s, med = s_all[sel], med_all[sel]
        entry: dict[str, Any] = {"reasons": {}, "notes": {}}
        for band, (lo, hi) in bands_t.items():
            interval, reason, note = _band_interval(s, med, lo, hi, IsotonicRegression)
            entry[band] = None if interval is None else [interval[0], interval[1]]
            entry["reasons"][band] = reason
            entry["notes"][band] = note
            rows["combination"].append(name)
            rows["band"].append(band)
            rows["lo"].append(None if interval is None else interval[0])
            rows["hi"].append(None if interval is None else interval[1])
            rows["usable"].append(interval is not None)
            rows["reason"].append(reason)
            rows["note"].append(note)
            rows["band_lo"].append(lo)
            rows["band_hi"].append(hi)
        out[name] = entry
    return pa.table(rows, schema=_RANGE_SCHEMA), out


def _band_interval(
    s: np.ndarray, med: np.ndarray, lo: float, hi: float, isotonic: type
) -> tuple[tuple[float, float] | None, str | None, str | None]:
    """(interval, reason it is unusable, note) for one band."""
    if len(s) < 2:
        return None, "fewer than two intensities with a finite median δ", None
    fit = isotonic(increasing=True, out_of_bounds="clip").fit(s, med)
    fine = np.linspace(float(s.min()), float(s.max()), FINE_GRID_POINTS)
    f = fit.predict(fine)
    inside = (f >= lo) & (f <= hi)
    if not inside.any():
        if f.max() < lo:
            return None, (
                f"median δ reaches at most {f.max():.1%} (at s = {s.max():g}), below the band "
                f"{lo:.0%}–{hi:.0%}: the combination cannot reach it on this grid"
            ), None
        if f.min() > hi:
            return None, (
                f"median δ is already {f.min():.1%} at the smallest s = {s.min():g}, above the band "
                f"{lo:.0%}–{hi:.0%}: add smaller intensities to the grid"
            ), None
        return None, f"median δ jumps over the band {lo:.0%}–{hi:.0%} between two fine-grid intensities", None
    where = np.flatnonzero(inside)
    a, b = float(fine[where[0]]), float(fine[where[-1]])
    if b <= a:
        reason = f"median δ crosses the band {lo:.0%}–{hi:.0%} within one fine-grid step (s ≈ {a:.3f})"
        return None, reason, None
    # No extrapolation: where the band is already entered at the smallest s (or not yet left at the largest),
    # the interval stops at the grid's end and says so; a wider grid would tell how far it really goes.
    notes = []
    if where[0] == 0 and f[0] > lo:
        notes.append(f"median δ is already {f[0]:.1%} at the smallest s; smaller s may qualify too")
    if where[-1] == len(fine) - 1 and f[-1] < hi:
        notes.append(f"median δ is still {f[-1]:.1%} at the largest s; larger s may qualify too")
    return (round(a, 6), round(b, 6)), None, "; ".join(notes) or None


def _ranges_from_json(ranges: Mapping[str, Any]) -> dict[str, dict[str, tuple[float, float] | None]]:
    out: dict[str, dict[str, tuple[float, float] | None]] = {}
    for name, entry in ranges.items():
        out[name] = {
            band: (None if v is None else (float(v[0]), float(v[1])))
            for band, v in entry.items()
            if band not in ("reasons", "notes")
        }
    return out


def load_ranges(store: Store | str | os.PathLike[str]) -> dict[str, dict[str, tuple[float, float] | None]]:
    """The calibrated s-ranges from the store's attributes (no Parquet needed), for the trainer.

    Args:
        store: an open :class:`~topo.store_schema.Store` or its path/URL.

    Returns:
        ``{combination_name: {"weak": (lo, hi) | None, "strong": (lo, hi) | None}}`` (one key per band);
        ``None`` where the combination cannot reach the band. Names are ``+``-joined operator names, which
        :func:`topo.pipeline.augment.parse_combination` turns back into tuples.

    Raises:
        StoreError: the store has not been calibrated.
    """
    st = store if isinstance(store, Store) else open_store(store)
    cal = st.attrs.get("calibration")
    if not isinstance(cal, dict) or "ranges" not in cal:
        raise StoreError(f"{st.location} has no calibration; run `topo calibrate-aug {st.location}` first")
    return _ranges_from_json(cal["ranges"])


# --- what a person sees -------------------------------------------------------------------------------------


def format_ranges(ranges: Mapping[str, Mapping[str, Any]] | pa.Table) -> Any:
    """A rich table of the calibrated ranges: one row per combination, one column per band.

    Args:
        ranges: :func:`load_ranges`' dict, or the ranges table (which adds the reason a band is unusable).

    Returns:
        A :class:`rich.table.Table`.
    """
    from rich.table import Table

    reasons: dict[tuple[str, str], str] = {}
    if isinstance(ranges, pa.Table):
        data: dict[str, dict[str, tuple[float, float] | None]] = {}
        for r in ranges.to_pylist():
            data.setdefault(r["combination"], {})[r["band"]] = (
                None if r["lo"] is None else (r["lo"], r["hi"])
            )
            if r["reason"] or r.get("note"):
                reasons[(r["combination"], r["band"])] = r["reason"] or r["note"]
    else:
        data = {k: {b: v for b, v in e.items() if b not in ("reasons", "notes")} for k, e in ranges.items()}
    band_names = list(dict.fromkeys(b for e in data.values() for b in e))
    t = Table(title="Calibrated intensity ranges (s in [0, 1])")
    t.add_column("combination", style="bold")
    for b in band_names:
        t.add_column(f"topo-{b}")
    if reasons:
        t.add_column("note", overflow="fold")
    for name, entry in data.items():
        cells = []
        for b in band_names:
            v = entry.get(b)
            cells.append("[dim]unusable[/dim]" if v is None else f"{v[0]:.3f} – {v[1]:.3f}")
        if reasons:
            cells.append("; ".join(f"{b}: {reasons[(name, b)]}" for b in band_names if (name, b) in reasons))
        t.add_row(name, *cells)
    return t


def plot_calibration(
    table: pa.Table,
    out_png: str | os.PathLike[str],
    *,
    bands: Mapping[str, Sequence[float]] | None = None,
    ranges: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """δ against s per combination: median line, p10–p90 band, target bands and derived ranges shaded.

    Args:
        table: the per (combination, s) summary (:func:`summarize`).
        out_png: where to write the PNG.
        bands: target δ bands to draw as horizontal stripes.
        ranges: derived ranges (:func:`derive_ranges`' JSON or :func:`load_ranges`' dict), drawn as
            vertical spans.

    Returns:
        The PNG's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comb = table.column("combination").to_pylist()
    names = list(dict.fromkeys(comb))
    cols = max(1, min(4, len(names)))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False, sharey=True)
    colours = ["tab:green", "tab:red", "tab:purple", "tab:orange"]
    s_all = table.column("s").to_numpy()
    med, p10, p90 = (
        table.column(k).to_numpy(zero_copy_only=False) for k in ("delta_median", "delta_p10", "delta_p90")
    )
    for ax, name in zip(axes.flat, names, strict=False):
        sel = np.array([c == name for c in comb])
        ax.fill_between(s_all[sel], p10[sel], p90[sel], alpha=0.25, color="tab:blue", label="p10–p90")
        ax.plot(s_all[sel], med[sel], "o-", color="tab:blue", ms=3, label="median δ")
        for i, (bname, (lo, hi)) in enumerate((bands or {}).items()):
            colour = colours[i % len(colours)]
            ax.axhspan(lo, hi, color=colour, alpha=0.08)
            r = (ranges or {}).get(name, {}).get(bname)
            if r is not None:
                ax.axvspan(r[0], r[1], color=colour, alpha=0.15, label=f"topo-{bname}")
        ax.set_title(name, fontsize=8)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("δ (relative bottleneck)")
    for i, ax in enumerate(axes.flat[: len(names)]):
        if i + cols >= len(names):  # the lowest plot of its column
            ax.set_xlabel("intensity s")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1 : len(names)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
