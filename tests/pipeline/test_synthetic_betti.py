"""The synthetic Betti-number dataset: seeded, exact hole counts, one appearance law, and topology is the cue."""

from __future__ import annotations

import numpy as np
import pytest

from topo.pipeline.cue_check import cue_check, pd_features
from topo.pipeline.persistence import FiltrationSpec, topk_diagrams
from topo.pipeline.sources import SourceError, get_source
from topo.pipeline.sources.synthetic_betti import SPLIT_SIZES, SyntheticBettiSource
from topo.store_schema import open_store


def test_registered_with_fixed_balanced_splits():
    src = get_source("synthetic-betti", size=24, seed=3)
    assert isinstance(src, SyntheticBettiSource)
    recs = src.records()
    assert {s: sum(r.split == s for r in recs) for s in SPLIT_SIZES} == SPLIT_SIZES
    train = [r.label for r in recs if r.split == "train"]
    assert np.bincount(train).tolist() == [SPLIT_SIZES["train"] // 4] * 4
    assert src.info().class_names == ("1 hole", "2 holes", "3 holes", "4 holes")
    assert src.content_options()["seed"] == 3


def test_same_seed_same_bytes_other_seed_other_images():
    a = SyntheticBettiSource(seed=1, size=28, sizes={"train": 6})
    b = SyntheticBettiSource(seed=1, size=28, sizes={"train": 6})
    c = SyntheticBettiSource(seed=2, size=28, sizes={"train": 6})
    xa, ya = a.arrays("train")
    assert xa.dtype == np.uint8 and xa.shape == (6, 28, 28)
    assert np.array_equal(xa, b.arrays("train")[0])
    assert not np.array_equal(xa, c.arrays("train")[0])
    assert ya.tolist() == [0, 1, 2, 3, 0, 1]
    # payloads are the same images, made lazily
    assert np.array_equal(np.stack(list(a.payloads(a.records()))), xa)


@pytest.mark.parametrize("size", [24, 32])
@pytest.mark.slow
def test_the_class_is_the_number_of_long_lived_h1_pairs(size):
    x, y = SyntheticBettiSource(seed=0, size=size, sizes={"train": 40}).arrays("train")
    t = topk_diagrams(list(x[..., None]), [None] * len(x), FiltrationSpec())
    persistence = t.h1[:, :, 1] - t.h1[:, :, 0]
    assert ((persistence > 0.2).sum(1) == y + 1).mean() >= 0.95


@pytest.mark.slow
def test_appearance_does_not_count_holes():
    x, y = SyntheticBettiSource(seed=0, size=28, sizes={"train": 400}).arrays("train")
    brightness = x.reshape(len(x), -1).mean(1)
    # every class has four bright disks of one law: mean grey level hardly correlates with the hole count
    assert abs(np.corrcoef(brightness, y)[0, 1]) < 0.15
    bright_area = (x > np.median(x.reshape(len(x), -1), axis=1)[:, None, None]).reshape(len(x), -1).mean(1)
    assert abs(np.corrcoef(bright_area, y)[0, 1]) < 0.15


def test_too_small_an_image_is_refused():
    with pytest.raises(SourceError, match="at least 24"):
        SyntheticBettiSource(size=16)


@pytest.mark.slow
def test_diagram_features_beat_pixels_by_30_points():
    src = SyntheticBettiSource(seed=0, size=24, sizes={"train": 240, "test": 120})
    res = cue_check(*src.arrays("train"), *src.arrays("test"))
    assert res.pd_acc - res.pixel_acc >= 0.30, res.lines()
    assert pd_features(src.arrays("test")[0][:2]).shape[0] == 2


@pytest.mark.slow
def test_build_a_store(ray_session, tmp_path):
    from topo.pipeline.job import BuildConfig, build_store

    out = tmp_path / "sb.zarr"
    summary = build_store(
        BuildConfig(dataset="synthetic-betti", out=out, size=24, roi="none", limit=8, chunk_size=4, progress=False)
    )
    assert summary.complete
    st = open_store(out)
    assert st.problems() == []
    assert st.num_samples == 8
    assert st.array("images")[0].shape[:2] == (24, 24)
