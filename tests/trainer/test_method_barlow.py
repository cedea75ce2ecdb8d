"""Barlow Twins method: loss decreases on a fixed batch, λ options, view-agnostic, registry errors."""

from __future__ import annotations

import pytest
import torch
from method_helpers import FEAT, TinyConvNet, TinyDiagramNet, diagram_view, image_views, train
from torch import nn

from topo.trainer.losses import barlow_twins_loss
from topo.trainer.methods import BarlowTwins, BarlowTwinsConfig, build_method

torch.set_num_threads(1)

SMALL = {"proj_hidden_dim": 32, "proj_dim": 16}


def test_loss_decreases_on_fixed_batch() -> None:
    torch.manual_seed(0)
    method = build_method("barlow", TinyConvNet(), FEAT, **SMALL)
    losses = train(method, *image_views(), steps=20)
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]


def test_projector_shape_and_loss_wiring() -> None:
    torch.manual_seed(0)
    method = build_method("barlow", TinyConvNet(), FEAT, **SMALL)
    linears = [m for m in method.projector if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(FEAT, 32), (32, 32), (32, 16)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in method.projector) == 2
    v1, v2 = image_views()
    out = method(v1, v2)
    with torch.no_grad():
        expected = barlow_twins_loss(
            method.projector(method.backbone(v1)), method.projector(method.backbone(v2)), lambd=0.0051
        )
    torch.testing.assert_close(out.loss.detach(), expected)
    assert set(out.metrics) == {"loss"} and out.features.shape == (8, FEAT)
    method.on_step_end(0, 10)  # no momentum encoder: a no-op that must not fail


def test_lambda_none_means_one_over_proj_dim() -> None:
    assert BarlowTwinsConfig(proj_dim=64, lambd=None).effective_lambda == pytest.approx(1 / 64)
    assert BarlowTwinsConfig().effective_lambda == 0.0051
    torch.manual_seed(0)
    method = build_method("barlow", TinyConvNet(), FEAT, lambd=None, **SMALL)
    v1, v2 = image_views()
    out = method(v1, v2)
    with torch.no_grad():
        z1, z2 = method.projector(method.backbone(v1)), method.projector(method.backbone(v2))
    torch.testing.assert_close(out.loss.detach(), barlow_twins_loss(z1, z2, lambd=1 / 16))


def test_topology_views() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    method = build_method("barlow", TinyDiagramNet(), FEAT, **SMALL)
    out = method(diagram_view(6, g), diagram_view(6, g))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in method.backbone.parameters())


def test_registry_and_config_errors() -> None:
    method = build_method("barlow", TinyConvNet(), FEAT, proj_batchnorm=False, **SMALL)
    assert isinstance(method, BarlowTwins)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in method.projector)
    cfg = BarlowTwinsConfig()
    assert (cfg.proj_hidden_dim, cfg.proj_dim, cfg.lambd, cfg.proj_batchnorm) == (2048, 2048, 0.0051, True)
    with pytest.raises(ValueError, match=r"\['lambda'\].*valid keys.*'lambd'"):
        build_method("barlow", TinyConvNet(), FEAT, **{"lambda": 0.1})
    with pytest.raises(ValueError, match=r"lambd must be >= 0 or None.*got -1"):
        build_method("barlow", TinyConvNet(), FEAT, lambd=-1)
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        build_method("barlow", TinyConvNet(), FEAT, **SMALL).eval()(*image_views(batch=1))
