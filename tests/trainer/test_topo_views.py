"""Topology-aware views: calibrated ranges respected, diagrams of the transformed ROI, one operator definition."""

from __future__ import annotations

import numpy as np
import pytest

import topo.pipeline.augment as pipeline_augment
import topo.trainer.topo_views as trainer_topo_views
from topo.pipeline.calibrate import load_ranges
from topo.pipeline.persistence import FiltrationSpec, topk_diagrams
from topo.store_schema import open_store
from topo.trainer.data import StoreDataset
from topo.trainer.topo_views import TopoViews, apply_draw


def test_trainer_uses_the_pipeline_operators():
    assert trainer_topo_views.OPERATORS is pipeline_augment.OPERATORS
    assert trainer_topo_views.apply is pipeline_augment.apply


def _views(store, **kw):
    st = open_store(store)
    return st, TopoViews(load_ranges(st), FiltrationSpec.from_json(st.persistence_spec), **kw)


def test_sampler_never_draws_outside_the_calibrated_ranges(calibrated_store):
    st, tv = _views(calibrated_store)
    ranges = load_ranges(st)
    rng = np.random.default_rng(0)
    for strength in ("weak", "strong"):
        for _ in range(500):
            d = tv.draw(rng, strength)
            ops = d.combination.split("+")
            assert len(d.s) == len(ops)
            for op, s in zip(ops, d.s, strict=True):
                # each operator from its own calibrated range (alone), else the combination's
                lo, hi = (ranges.get(op) or {}).get(strength) or ranges[d.combination][strength]
                assert lo <= s <= hi
                assert (lo, hi) == tv.intensity_range(op, strength, d.combination)


def test_online_views_carry_the_diagram_of_the_augmented_roi(calibrated_store):
    st, tv = _views(calibrated_store, dihedral=False)
    ds = StoreDataset(str(calibrated_store), splits="train", batch_size=4, shuffle=False, rank=0, world_size=1)
    sample = next(iter(ds))
    out = tv(sample)
    assert len(out["views"]) == 2
    spec = FiltrationSpec.from_json(st.persistence_spec)
    image = sample["image"].numpy().transpose(1, 2, 0)
    mask = sample["roi_mask"].numpy()[0]  # samples carry the mask 1×H×W
    for v, strength in enumerate(tv.strengths()):
        rng = np.random.default_rng([tv.seed, tv.epoch, int(sample["index"]), v])
        d = tv.draw(rng, strength)
        img, m = apply_draw(d, image, mask, rng)
        ref = topk_diagrams([img], [m], spec)
        assert np.array_equal(out["views"][v]["pd_h0"].numpy(), ref.h0[0])
        assert out["views"][v]["n_h1"] == int(ref.n_h1[0])
    # Deterministic for (seed, epoch, index); another epoch draws other views.
    again = tv(sample)
    assert np.array_equal(again["views"][1]["image"].numpy(), out["views"][1]["image"].numpy())
    tv.set_epoch(1)
    assert not np.array_equal(tv(sample)["views"][1]["image"].numpy(), out["views"][1]["image"].numpy())


def test_precomputed_mode_keeps_the_stored_diagram(calibrated_store):
    _, tv = _views(calibrated_store, mode="precomputed")
    ds = StoreDataset(str(calibrated_store), splits="train", batch_size=4, shuffle=False, rank=0, world_size=1)
    sample = next(iter(ds))
    out = tv(sample)
    assert np.array_equal(out["views"][0]["pd_h1"].numpy(), sample["pd_h1"].numpy())


def test_bad_pairing_and_missing_calibration_are_explained(small_store, calibrated_store):
    st = open_store(calibrated_store)
    spec = FiltrationSpec.from_json(st.persistence_spec)
    with pytest.raises(ValueError, match="pairing"):
        TopoViews(load_ranges(st), spec, pairing="weak+medium")
    with pytest.raises(ValueError, match="calibrate-aug"):
        TopoViews({}, spec, pairing="weak+strong")
    # The standard pairing needs no calibration.
    TopoViews({}, spec, pairing="standard")
