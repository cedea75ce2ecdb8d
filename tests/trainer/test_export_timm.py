"""An exported encoder loads with timm (three lines), a traced fused model with torch alone, a HF folder with timm."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from topo.store_schema import Geometry, open_store
from topo.trainer.build import build_backbone, encoder_from_checkpoint
from topo.trainer.config import TrainConfig
from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.eval.extract import batch_view
from topo.trainer.export import export_encoder
from topo.trainer.export_timm import SMALL_STEM_RECIPE, example_view, write_traced_fused
from topo.trainer.train import train


def _export(store, tmp_path, small_input):
    cfg = TrainConfig(
        store=str(store),
        out_dir=str(tmp_path / "run"),
        method="simclr",
        backbone="resnet18",
        small_input=small_input,
        epochs=1,
        max_steps=1,
        batch_size=16,
        num_workers=0,
        monitor_every=0,
        progress=False,
        method_options={"proj_hidden_dim": 32, "proj_dim": 16},
    )
    res = train(cfg)
    out = export_encoder(res.checkpoint, tmp_path / "exported", store_attrs=open_store(store).attrs)
    return res.checkpoint, out


def _trainer_features(store, checkpoint):
    ds = StoreDataset(
        str(store), splits="val", batch_size=8, shuffle=False, drop_last=False, rank=0, world_size=1, keys=("image",)
    )
    view = batch_view(next(iter(make_loader(ds))), "visual", None, torch.device("cpu"))
    original, _, _ = encoder_from_checkpoint(str(checkpoint))
    with torch.no_grad():
        return view["image"], original(view)


@pytest.mark.slow
def test_three_line_timm_load_gives_the_trainers_features(small_store, tmp_path, monkeypatch):
    checkpoint, out = _export(small_store, tmp_path, small_input=False)
    monkeypatch.chdir(out)
    # The three lines a timm user writes (json/timm/torch imported above).
    kw = json.load(open("metadata.json"))["timm"]  # noqa: SIM115 (the line as a timm user writes it)
    model = timm.create_model(kw["model_name"], pretrained=False, **kw["kwargs"])
    model.load_state_dict(torch.load("visual_encoder.pt", weights_only=True), strict=True)

    images, expected = _trainer_features(small_store, checkpoint)
    with torch.no_grad():
        got = model.eval()(images)
    assert torch.allclose(got, expected, atol=1e-5)
    # timm's own data config is the store's, not ImageNet's.
    cfg = timm.data.resolve_data_config({}, model=model)
    assert tuple(cfg["mean"]) == (0.5,) and tuple(cfg["std"]) == (0.25,) and tuple(cfg["input_size"]) == (1, 28, 28)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["store"]["fingerprint"].startswith("sha256:") and len(meta["store"]["fingerprint"]) == 71
    text = json.dumps(meta)
    assert str(tmp_path) not in text and str(small_store) not in text  # no machine paths
    assert kw["stem"] == "timm default"


@pytest.mark.slow
def test_small_input_stem_loads_with_the_documented_two_extra_lines(small_store, tmp_path, monkeypatch):
    checkpoint, out = _export(small_store, tmp_path, small_input=True)
    monkeypatch.chdir(out)
    kw = json.load(open("metadata.json"))["timm"]  # noqa: SIM115 (the line as a timm user writes it)
    assert kw["stem"].startswith("small_input") and SMALL_STEM_RECIPE in kw["recipe"]
    model = timm.create_model(kw["model_name"], pretrained=False, **kw["kwargs"])
    with pytest.raises(RuntimeError):  # without the stem lines strict loading must fail, not silently differ
        model.load_state_dict(torch.load("visual_encoder.pt", weights_only=True), strict=True)
    exec(kw["recipe"], {"json": json, "timm": timm, "torch": torch, "open": open})  # the recipe as written runs
    model = timm.create_model(kw["model_name"], pretrained=False, **kw["kwargs"])
    exec(SMALL_STEM_RECIPE, {"torch": torch, "model": model})
    model.load_state_dict(torch.load("visual_encoder.pt", weights_only=True), strict=True)
    images, expected = _trainer_features(small_store, checkpoint)
    with torch.no_grad():
        assert torch.allclose(model.eval()(images), expected, atol=1e-5)
    assert kw["hf_folder"].startswith("not written")


@pytest.mark.slow
def test_hf_folder_loads_with_timm_local_dir(small_store, tmp_path):
    pytest.importorskip("safetensors")
    checkpoint, out = _export(small_store, tmp_path, small_input=False)
    model = timm.create_model(f"local-dir:{out / 'hf'}", pretrained=True).eval()
    images, expected = _trainer_features(small_store, checkpoint)
    with torch.no_grad():
        assert torch.allclose(model(images), expected, atol=1e-5)
    assert tuple(timm.data.resolve_data_config({}, model=model)["mean"]) == (0.5,)


@pytest.mark.slow
def test_fused_encoder_traces_with_a_tuple_signature(tmp_path):
    g = Geometry.from_json(
        {"height": 28, "width": 28, "channels": 1, "k0": 8, "k1": 8, "chunk_size": 64, "num_samples": 1}
    )
    cfg = TrainConfig(store="s", out_dir="o", stage="joint", backbone="resnet18", small_input=True, topo_width=32)
    fused = build_backbone(cfg, g, load_inits=False).eval()
    sig = write_traced_fused(fused, g.to_json(), 28, tmp_path)
    loaded = torch.jit.load(str(tmp_path / sig["file"]))
    view = example_view(g.to_json(), 28, batch=3)  # another batch size than the trace's
    view["n_h0"] = torch.tensor([1, 4, 8])  # and other valid counts
    view["n_h1"] = torch.tensor([0, 2, 8])
    with torch.no_grad():
        features, gates = loaded(view["image"], view["pd_h0"], view["n_h0"], view["pd_h1"], view["n_h1"])
        expected = fused(view)
    assert torch.allclose(features, expected, atol=1e-5)
    assert torch.allclose(gates, fused.last_gate_weights, atol=1e-5)
    assert sig["experts"] == list(fused.fusion.experts)


@pytest.mark.slow
def test_a_joint_export_holds_the_traced_fused_model_and_timm_weights(small_store, tmp_path):
    cfg = TrainConfig(
        store=str(small_store),
        out_dir=str(tmp_path / "run"),
        method="simclr",
        stage="joint",
        backbone="resnet18",
        small_input=True,
        pairing="standard",
        topo_views="online",  # --pairing standard: diagrams of the augmented views, online
        topo_width=32,
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
    assert meta["fused"]["file"] == "fused_traced.pt" and (out / "visual_encoder.pt").is_file()
    ds = StoreDataset(
        str(small_store), splits="val", batch_size=8, shuffle=False, drop_last=False, rank=0, world_size=1
    )
    view = batch_view(next(iter(make_loader(ds))), "joint", None, torch.device("cpu"))
    original, _, _ = encoder_from_checkpoint(str(res.checkpoint))
    traced = torch.jit.load(str(out / "fused_traced.pt"))
    with torch.no_grad():
        features, gates = traced(view["image"], view["pd_h0"], view["n_h0"], view["pd_h1"], view["n_h1"])
        assert torch.allclose(features, original(view), atol=1e-5)
    assert gates.shape == (8, len(meta["fused"]["experts"]))
    assert meta["fused"]["exported_program"] == "fused.pt2"
    program = torch.export.load(str(out / "fused.pt2")).module()
    with torch.no_grad():
        f2, _ = program(view["image"], view["pd_h0"], view["n_h0"], view["pd_h1"], view["n_h1"])
    assert torch.allclose(f2, features, atol=1e-5)
    assert "fused_traced.pt" in (out / "README.md").read_text()
