"""δ and the calibration job: real BreastMNIST images, real GUDHI, a real local Ray, real stores on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fixtures.datasets import demo_npz
from scipy import ndimage
from skimage.filters import threshold_otsu

from topo.pipeline.calibrate import (
    CalibrationConfigError,
    Delta,
    delta_for_image,
    derive_ranges,
    diagram_scale,
    format_ranges,
    load_ranges,
    parse_bands,
    parse_grid,
    relative_bottleneck,
    run_calibration,
    select_samples,
    summarize,
)
from topo.pipeline.persistence import FiltrationSpec, topk_diagrams
from topo.store_schema import StoreError, StoreFiles, open_store

SPEC = FiltrationSpec()
JOB = {
    "combinations": [("hflip",), ("gaussian_noise",), ("brightness",), ("gaussian_blur", "erosion")],
    "grid": [0.25, 0.5, 0.75, 1.0],
    "samples": 24,
    "seed": 3,
    "block_size": 5,  # 24 images → 5 blocks, the last one partial
    "progress": False,
}


# --- δ on real images ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    """Forty real BreastMNIST images (the demo embedded in the package) with an Otsu-ish ROI (foreground = the
    side touching the border less)."""
    with np.load(demo_npz()) as z:
        x = z["train_images"][:40]
    masks = []
    for im in x:
        fg = im > threshold_otsu(im)
        if np.concatenate([fg[0], fg[-1], fg[:, 0], fg[:, -1]]).mean() > 0.5:
            fg = ~fg
        masks.append(ndimage.binary_fill_holes(fg).astype(np.uint8))
    return x, np.stack(masks)


def _pd(image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    t = topk_diagrams([image], [mask], SPEC)
    return t.h0[0, : t.n_h0[0]], t.h1[0, : t.n_h1[0]]


@pytest.mark.parametrize("name", ["hflip", "vflip", "rot90"])
def test_exact_homeomorphisms_give_zero_delta(images, name: str) -> None:
    x, masks = images
    for i in range(len(x)):
        for mask in (masks[i], None):  # the ROI and the full image
            pd_x = _pd(x[i], mask)
            for s in (0.1, 0.5, 0.9):  # rot90 turns 1, 2 and 3 quarters
                d = delta_for_image(x[i], mask, pd_x, (name,), s, np.random.default_rng(0), SPEC)
                assert d == Delta(0.0, 0.0, 0.0), (name, i, s, d)


def test_median_delta_grows_with_noise(images) -> None:
    x, masks = images
    medians = []
    for s in (0.15, 0.4, 0.7, 1.0):
        ds = [
            delta_for_image(x[i], m, _pd(x[i], m), "gaussian_noise", s, np.random.default_rng(i), SPEC)
            for i, m in enumerate(masks)
        ]
        medians.append(np.median([d.overall for d in ds]))
        assert all(d.overall == max(d.h0, d.h1) for d in ds)
    assert np.all(np.diff(medians) > 0), medians
    assert 0.0 < medians[0] < 0.15 and medians[-1] > 0.15, medians


def test_full_image_delta_differs_from_roi_delta(images) -> None:
    x, masks = images
    roi, full = [], []
    for i in range(12):
        pd_x = _pd(x[i], masks[i])
        rng = np.random.default_rng(i)
        roi.append(delta_for_image(x[i], masks[i], pd_x, "gaussian_blur", 0.5, rng, SPEC).overall)
        rng = np.random.default_rng(i)
        # full_image=True recomputes PD(x) on the whole image: the stored ROI diagram is ignored.
        d = delta_for_image(x[i], masks[i], pd_x, "gaussian_blur", 0.5, rng, SPEC, full_image=True)
        full.append(d.overall)
        ref = delta_for_image(x[i], None, None, "gaussian_blur", 0.5, np.random.default_rng(i), SPEC)
        assert full[-1] == ref.overall
    assert not np.allclose(roi, full)


def test_relative_bottleneck_definition() -> None:
    e = np.zeros((0, 2))
    pd_x = (np.array([[0.1, 0.9], [0.2, 0.4]]), np.array([[0.3, 0.5]]))
    assert diagram_scale(pd_x) == pytest.approx(0.8)  # max death − min birth over H0 ∪ H1
    assert relative_bottleneck(pd_x, pd_x) == Delta(0.0, 0.0, 0.0)
    # Essential bar shortened by 0.08 at its death; the H1 pair vanishes (cost: half its persistence, 0.1).
    d = relative_bottleneck(pd_x, (np.array([[0.1, 0.82], [0.2, 0.4]]), e))
    assert d.h0 == pytest.approx(0.08 / 0.8) and d.h1 == pytest.approx(0.1 / 0.8) and d.overall == d.h1
    # A constant ROI has scale 0: the floor of one grey level keeps δ finite.
    flat = (np.array([[0.5, 0.5]]), e)
    assert diagram_scale(flat) == pytest.approx(1 / 255)
    assert np.isfinite(relative_bottleneck(flat, (np.array([[0.4, 0.6]]), e)).overall)


def test_select_samples_is_stratified_and_seeded() -> None:
    labels = np.array([0] * 30 + [1] * 70 + [2] * 100)
    cand = np.arange(200)
    a = select_samples(labels, cand, 20, seed=0)
    assert len(a) == 20 and np.array_equal(a, select_samples(labels, cand, 20, seed=0))
    assert np.bincount(labels[a]).tolist() == [3, 7, 10]
    assert not np.array_equal(a, select_samples(labels, cand, 20, seed=1))
    assert np.array_equal(select_samples(labels, cand[:10], 50, seed=0), cand[:10])


# --- the job on a real store -----------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    # The session store is shared with other tests: calibrate a private copy.
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def calibrated(small_store: Path, ray_session, tmp_path_factory):
    store = _copy(small_store, tmp_path_factory.mktemp("cal") / "a.zarr")
    return store, run_calibration(store, **JOB)


def test_job_writes_tables_ranges_attrs_and_plot(calibrated) -> None:
    store, res = calibrated
    assert res.num_images == 24 and res.num_configs == 16 and res.blocks_total == 5
    assert res.evaluations == 24 * 16 and res.blocks_resumed == 0
    deltas = pq.read_table(store / StoreFiles.CALIBRATION_DELTAS)
    table = pq.read_table(store / StoreFiles.CALIBRATION_TABLE)
    ranges = pq.read_table(store / StoreFiles.CALIBRATION_RANGES)
    assert deltas.num_rows == 24 * 16 and table.num_rows == 16 and ranges.num_rows == 4 * 2
    wanted = {"n", "delta_median", "delta_p10", "delta_p90", "delta_mean", "delta_h0_mean", "delta_h1_p90"}
    assert wanted <= set(table.column_names)
    # Samples come from the train split, usable ones only, stratified by class.
    st = open_store(store)
    idx = np.unique(deltas.column("index").to_numpy())
    assert len(idx) == 24 and set(idx) <= set(st.indices("train").tolist())
    assert len(np.unique(st.array("labels")[:][idx])) == 2
    # The homeomorphism is δ = 0 on every stored diagram, and so unusable for any band.
    flips = deltas.filter(np.array([c == "hflip" for c in deltas.column("combination").to_pylist()]))
    assert np.all(flips.column("delta").to_numpy() == 0.0)
    cal = st.attrs["calibration"]
    assert cal["ranges"]["hflip"]["weak"] is None and cal["ranges"]["hflip"]["reasons"]["weak"]
    assert cal["tables"]["ranges"] == StoreFiles.CALIBRATION_RANGES and cal["seed"] == 3
    assert cal["full_image"] is False and "scale(PD(x))" in cal["definition"]["scale"]
    json.dumps(cal)  # plain JSON
    assert res.plot_path is not None and res.plot_path.exists() and res.plot_path.stat().st_size > 10_000
    assert res.plot_path.name == "a.zarr.calibration.png"


def test_ranges_lie_inside_the_grid_and_weak_below_strong(calibrated) -> None:
    store, res = calibrated
    ranges = load_ranges(store)
    assert ranges == res.ranges and load_ranges(open_store(store)) == ranges
    usable = 0
    for name, r in ranges.items():
        assert set(r) == {"weak", "strong"}
        for band in ("weak", "strong"):
            if r[band] is not None:
                lo, hi = r[band]
                assert JOB["grid"][0] <= lo < hi <= JOB["grid"][-1], (name, band, r[band])
                usable += 1
        if r["weak"] is not None and r["strong"] is not None:
            assert r["weak"][1] <= r["strong"][0], (name, r)
    assert usable >= 4
    assert ranges["gaussian_noise"]["weak"] is not None
    # Inside a weak range the measured median δ lies in the band, up to interpolation between grid points.
    table = res.table.to_pylist()
    for row in table:
        r = ranges[row["combination"]]["weak"]
        if r is not None and r[0] < row["s"] < r[1]:
            assert 0.05 <= row["delta_median"] <= 0.15


def test_rerun_with_the_same_seed_gives_identical_tables(calibrated, small_store: Path, tmp_path: Path):
    _, res = calibrated
    # A fresh store, other block boundaries (so other tasks and scheduling): the same numbers.
    again = run_calibration(_copy(small_store, tmp_path / "b.zarr"), **{**JOB, "block_size": 7})
    assert again.blocks_resumed == 0
    assert again.deltas.equals(res.deltas)
    assert again.table.equals(res.table)
    assert again.ranges_table.equals(res.ranges_table)


def test_interrupted_run_resumes_to_identical_tables(calibrated, tmp_path: Path) -> None:
    store, res = calibrated
    copy = _copy(store, tmp_path / "c.zarr")
    parts = sorted((copy / StoreFiles.CALIBRATION_PARTS).glob("block-*.parquet"))
    assert len(parts) == 5
    for p in parts[1::2]:  # as if the job had died with blocks 1 and 3 unfinished
        p.unlink()
    resumed = run_calibration(copy, **JOB)
    assert resumed.blocks_resumed == 3 and resumed.evaluations == 10 * 16
    assert resumed.deltas.equals(res.deltas) and resumed.table.equals(res.table)
    assert pq.read_table(copy / StoreFiles.CALIBRATION_RANGES).equals(res.ranges_table)


def test_another_configuration_is_refused_unless_overwrite(calibrated, tmp_path: Path) -> None:
    store, _ = calibrated
    copy = _copy(store, tmp_path / "d.zarr")
    with pytest.raises(CalibrationConfigError, match="differs in: full_image, seed"):
        run_calibration(copy, **{**JOB, "seed": 4, "full_image": True})
    small = {**JOB, "combinations": ["gaussian_noise"], "grid": [0.5, 1.0], "samples": 6, "full_image": True}
    res = run_calibration(copy, **small, overwrite=True)
    assert res.blocks_resumed == 0 and res.deltas.num_rows == 6 * 2
    parts = sorted(p.name for p in (copy / StoreFiles.CALIBRATION_PARTS).glob("block-*"))
    assert parts == ["block-000000.parquet", "block-000001.parquet"]  # the old configuration's parts are gone
    assert open_store(copy).attrs["calibration"]["full_image"] is True


def test_bad_arguments_raise_value_error(small_store: Path) -> None:
    with pytest.raises(ValueError, match="unknown augmentation operator 'sharpen'"):
        run_calibration(small_store, combinations=["sharpen"], progress=False)
    with pytest.raises(ValueError, match=r"grid intensities must lie in \(0, 1\]"):
        run_calibration(small_store, grid=[0.0, 0.5], progress=False)
    with pytest.raises(ValueError, match="bands must not overlap"):
        run_calibration(small_store, bands={"weak": (0.05, 0.2), "strong": (0.15, 0.25)}, progress=False)
    with pytest.raises(ValueError, match="unknown split 'training'"):
        run_calibration(small_store, split="training", progress=False)
    with pytest.raises(StoreError, match="no store"):
        run_calibration(small_store.parent / "missing.zarr", progress=False)


def test_load_ranges_on_an_uncalibrated_store_says_what_to_run(small_store: Path) -> None:
    with pytest.raises(StoreError, match="calibrate-aug"):
        load_ranges(small_store)


def test_derive_ranges_marks_unreachable_bands_with_reasons(calibrated) -> None:
    _, res = calibrated
    # Bands far above what the grid reaches: every combination unusable, each with a reason.
    tbl, js = derive_ranges(res.table, {"huge": (5.0, 6.0)})
    assert not any(tbl.column("usable").to_pylist())
    assert all("cannot reach" in r for r in tbl.column("reason").to_pylist())
    assert all(v["huge"] is None for v in js.values())
    # And the summary is a pure function of the raw rows.
    names = list(dict.fromkeys(res.deltas.column("combination").to_pylist()))
    assert summarize(res.deltas, names, JOB["grid"]).equals(res.table)


def test_format_ranges_renders_for_people(calibrated) -> None:
    from rich.console import Console

    _, res = calibrated
    console = Console(width=200, record=True)
    console.print(format_ranges(res.ranges_table))
    console.print(format_ranges(res.ranges))
    text = console.export_text()
    assert "topo-weak" in text and "gaussian_noise" in text and "unusable" in text and "cannot reach" in text


def test_command_line_parsers() -> None:
    assert parse_grid("4") == (0.25, 0.5, 0.75, 1.0)
    assert parse_grid("0.1, 0.3,0.9") == (0.1, 0.3, 0.9)
    with pytest.raises(ValueError, match="count"):
        parse_grid("a,b")
    with pytest.raises(ValueError, match="strictly increasing"):
        parse_grid("0.5,0.2")
    assert parse_bands("weak=0.05:0.15,strong=0.15:0.25") == {"weak": (0.05, 0.15), "strong": (0.15, 0.25)}
    with pytest.raises(ValueError, match=r"weak=0\.05:0\.15"):
        parse_bands("weak=0.05-0.15")
    with pytest.raises(ValueError, match="overlap"):
        parse_bands("a=0.1:0.3,b=0.2:0.4")
