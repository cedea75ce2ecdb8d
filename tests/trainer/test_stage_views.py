"""Stage 3 views: the diagram the topology encoder gets is GUDHI's diagram of the image the visual encoder gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.pipeline.persistence import topk_diagrams
from topo.store_schema import open_store
from topo.store_schema.calibration import load_ranges
from topo.store_schema.filtration import FiltrationSpec
from topo.trainer.config import TrainConfig
from topo.trainer.data import StoreDataset
from topo.trainer.stage_views import denormalise, make_views
from topo.trainer.topo_views import TopoViews
from topo.trainer.train import train

CPU = torch.device("cpu")


def _batch(store, mode: str, pairing: str = "weak+strong"):
    st = open_store(store)
    spec = FiltrationSpec.from_json(st.persistence_spec)
    tv = TopoViews(load_ranges(st) if pairing != "standard" else {}, spec, pairing=pairing, mode=mode, seed=0)
    ds = StoreDataset(
        str(store), splits="train", batch_size=4, shuffle=False, rank=0, world_size=1, transform=tv, collate=True
    )
    return next(iter(ds)), spec, st.geometry.height


def _cfg(store, tmp_path, **kw) -> TrainConfig:
    return TrainConfig(store=str(store), out_dir=str(tmp_path / "run"), stage="joint", **kw)


def _diagrams_of_fed_images(v, masks, spec):
    # De-normalise the encoder's input; the views are uint8 images, so rounding recovers them exactly.
    imgs = np.rint(denormalise(v["image"])).astype(np.uint8)
    return topk_diagrams(list(imgs), list(masks) if masks is not None else [None] * len(imgs), spec)


@pytest.mark.parametrize("mode", ["online", "full_image"])
def test_topology_encoder_gets_the_diagram_of_the_visual_encoders_image(calibrated_store, tmp_path, mode):
    batch, spec, size = _batch(calibrated_store, mode)
    v1, v2 = make_views(batch, _cfg(calibrated_store, tmp_path, topo_views=mode), 0, size, CPU, spec)
    for k, v in enumerate((v1, v2)):
        masks = None if mode == "full_image" else batch["views"][k]["roi_mask"].numpy()
        ref = _diagrams_of_fed_images(v, masks, spec)
        assert np.array_equal(v["pd_h0"].numpy(), ref.h0)
        assert np.array_equal(v["pd_h1"].numpy(), ref.h1)
        assert np.array_equal(v["n_h0"].numpy(), ref.n_h0) and np.array_equal(v["n_h1"].numpy(), ref.n_h1)


def test_stacked_ablation_breaks_that_match(calibrated_store, tmp_path):
    batch, spec, size = _batch(calibrated_store, "online")
    cfg = _cfg(calibrated_store, tmp_path, stage3_views="standard+topo")
    v1, _ = make_views(batch, cfg, 0, size, CPU, spec)
    ref = _diagrams_of_fed_images(v1, None, spec)
    assert not np.array_equal(v1["pd_h0"].numpy(), ref.h0)  # the crop/jitter/blur changed the image, not the PD


def test_standard_pair_diagrams_are_of_the_augmented_views(calibrated_store, tmp_path):
    batch, spec, size = _batch(calibrated_store, "online", pairing="standard")
    v1, v2 = make_views(batch, _cfg(calibrated_store, tmp_path, pairing="standard"), 0, size, CPU, spec)
    assert not torch.equal(v1["image"], v2["image"])
    for v in (v1, v2):
        t = topk_diagrams(list(denormalise(v["image"])), [None] * len(v["image"]), spec)
        assert np.array_equal(v["pd_h0"].numpy(), t.h0) and np.array_equal(v["pd_h1"].numpy(), t.h1)


def test_precomputed_diagrams_are_refused_for_the_paper_joint_stage(calibrated_store, tmp_path):
    with pytest.raises(ValueError, match="un-augmented image"):
        _cfg(calibrated_store, tmp_path, topo_views="precomputed")
    _cfg(calibrated_store, tmp_path, topo_views="precomputed", stage3_views="standard+topo")  # the ablation is fine


def test_full_image_views_need_a_full_image_calibration(calibrated_store, tmp_path):
    cfg = _cfg(calibrated_store, tmp_path, topo_views="full_image", backbone="resnet18", device="cpu")
    with pytest.raises(ValueError, match="calibrate-aug --full-image"):
        train(cfg)


def test_eval_of_a_full_image_run_uses_whole_image_diagrams(calibrated_store):
    from topo.trainer.eval.extract import batch_view

    st = open_store(calibrated_store)
    spec = FiltrationSpec.from_json(st.persistence_spec)
    ds = StoreDataset(
        str(calibrated_store), splits="val", batch_size=4, shuffle=False, rank=0, world_size=1, collate=True
    )
    batch = next(iter(ds))
    whole = batch_view(batch, "joint", None, CPU, spec)
    ref = topk_diagrams(list(batch["image"].numpy().transpose(0, 2, 3, 1)), [None] * 4, spec)
    assert np.array_equal(whole["pd_h0"].numpy(), ref.h0) and np.array_equal(whole["pd_h1"].numpy(), ref.h1)
    roi = batch_view(batch, "joint", None, CPU)
    assert np.array_equal(roi["pd_h1"].numpy(), batch["pd_h1"].numpy())


def test_every_row_says_what_its_views_are(calibrated_store, tmp_path):
    from topo.trainer.stage_views import view_definition

    paper = view_definition(_cfg(calibrated_store, tmp_path))
    assert "its own calibrated range" in paper and "same view images" in paper
    assert "Table 4 (a)" in view_definition(_cfg(calibrated_store, tmp_path, pairing="standard"))
    assert "Table 4 (b)" in view_definition(_cfg(calibrated_store, tmp_path, topo_views="full_image"))
    assert "stacked" in view_definition(_cfg(calibrated_store, tmp_path, stage3_views="standard+topo"))
    assert "visual pair" in view_definition(TrainConfig(store="s", out_dir="o", stage="visual"))
