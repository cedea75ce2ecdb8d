"""SimCLR method: training on a fixed batch lowers the loss; view-agnostic; registry and config errors."""

from __future__ import annotations

import pytest
import torch
from method_helpers import FEAT, TinyConvNet, TinyDiagramNet, diagram_view, image_views, train
from torch import nn

from topo.trainer.methods import METHODS, MethodOutput, SimCLR, SimCLRConfig, build_method

torch.set_num_threads(1)

SMALL = {"proj_hidden_dim": 32, "proj_dim": 8}


def test_loss_decreases_on_fixed_batch() -> None:
    torch.manual_seed(0)
    method = build_method("simclr", TinyConvNet(), FEAT, **SMALL)
    losses = train(method, *image_views(), steps=20)
    assert sum(losses[-3:]) / 3 < 0.9 * losses[0]


def test_output_contract() -> None:
    torch.manual_seed(0)
    method = SimCLR(TinyConvNet(), FEAT, SimCLRConfig(**SMALL))
    v1, v2 = image_views(batch=6)
    out = method(v1, v2)
    assert isinstance(out, MethodOutput)
    assert out.loss.ndim == 0 and out.loss.requires_grad
    assert out.features.shape == (6, FEAT) and not out.features.requires_grad
    torch.testing.assert_close(out.features, method.encoder(v1))
    assert "metrics" not in vars(out)  # converted lazily: a step that does not log pays no device sync
    assert set(out.metrics) == {"loss", "pos_cos"}
    assert all(isinstance(v, float) for v in out.metrics.values())
    assert out.metrics["loss"] == pytest.approx(float(out.loss.detach()))
    assert method.encoder is method.backbone


def test_topology_views_are_passed_through_untouched() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    method = build_method("simclr", TinyDiagramNet(), FEAT, **SMALL)
    out = method(diagram_view(5, g), diagram_view(5, g))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in method.backbone.parameters())


def test_timm_resnet_backbone() -> None:
    import timm

    class TimmImage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = timm.create_model("resnet18", pretrained=False, num_classes=0)

        def forward(self, view: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.model(view["image"])

    torch.manual_seed(0)
    backbone = TimmImage()
    method = build_method("simclr", backbone, backbone.model.num_features, **SMALL)
    out = method(*image_views(batch=4))
    out.loss.backward()
    assert out.features.shape == (4, 512)
    assert backbone.model.conv1.weight.grad is not None


def test_wrong_feat_dim_is_reported() -> None:
    method = build_method("simclr", TinyConvNet(), FEAT + 1, **SMALL)
    with pytest.raises(ValueError, match=rf"expected \(B, {FEAT + 1}\)"):
        method(*image_views())


def test_registry() -> None:
    assert set(METHODS) == {"simclr", "mocov3", "byol", "dino", "barlow"}
    assert all(cls.name == name for name, cls in METHODS.items())
    method = build_method("simclr", TinyConvNet(), FEAT, temperature=0.3, proj_batchnorm=False, **SMALL)
    assert isinstance(method, SimCLR)
    assert method.cfg == SimCLRConfig(temperature=0.3, proj_batchnorm=False, **SMALL)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in method.projector.modules())


def test_config_defaults() -> None:
    cfg = SimCLRConfig()
    assert (cfg.proj_hidden_dim, cfg.proj_dim, cfg.temperature, cfg.proj_batchnorm) == (2048, 128, 0.1, True)


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'simclrr'.*'barlow'.*'simclr'"):
        build_method("simclrr", TinyConvNet(), FEAT)
    with pytest.raises(ValueError, match=r"\['temp'\].*valid keys.*'temperature'"):
        build_method("simclr", TinyConvNet(), FEAT, temp=0.2)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0\.0"):
        build_method("simclr", TinyConvNet(), FEAT, temperature=0.0)
    with pytest.raises(ValueError, match="feat_dim"):
        build_method("simclr", TinyConvNet(), 0)
