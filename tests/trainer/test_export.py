"""Exported encoders reload through `topo.load_encoder` and give identical features."""

from __future__ import annotations

import json

import pytest
import torch

import topo
from topo.store_schema import open_store
from topo.trainer.build import encoder_from_checkpoint
from topo.trainer.config import TrainConfig
from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.eval.extract import batch_view
from topo.trainer.export import export_encoder
from topo.trainer.train import train


def test_exported_encoder_reloads_with_identical_features(small_store, tmp_path):
    cfg = TrainConfig(
        store=str(small_store),
        out_dir=str(tmp_path / "run"),
        method="simclr",
        backbone="resnet18",
        small_input=False,
        epochs=1,
        max_steps=1,
        batch_size=16,
        num_workers=0,
        monitor_every=0,
        progress=False,
        method_options={"proj_hidden_dim": 32, "proj_dim": 16},
    )
    res = train(cfg)
    out = export_encoder(res.checkpoint, tmp_path / "exported", store_attrs=open_store(small_store).attrs)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training_data"]["license"] == "CC BY 4.0" and meta["store"]["fingerprint"].startswith("sha256:")
    assert meta["input"]["image"]["channels"] == 1
    ds = StoreDataset(
        str(small_store),
        splits="val",
        batch_size=8,
        shuffle=False,
        drop_last=False,
        rank=0,
        world_size=1,
        keys=("image", "label"),
    )
    view = batch_view(next(iter(make_loader(ds))), "visual", None, torch.device("cpu"))
    original, _, _ = encoder_from_checkpoint(str(res.checkpoint))
    reloaded = topo.load_encoder(out)
    with torch.no_grad():
        assert torch.equal(original(view), reloaded(view))


def test_load_encoder_refuses_a_folder_without_metadata(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metadata\.json"):
        topo.load_encoder(tmp_path)
