"""BYOL method: loss decreases on a fixed batch, target network follows the cosine schedule exactly."""

from __future__ import annotations

import math

import pytest
import torch
from method_helpers import FEAT, TinyConvNet, TinyDiagramNet, diagram_view, image_views, train
from torch import nn

from topo.trainer.methods import BYOL, BYOLConfig, build_method

torch.set_num_threads(1)

SMALL = {"proj_hidden_dim": 32, "proj_dim": 8, "pred_hidden_dim": 32}


def online_and_target(method: BYOL) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    online = [*method.backbone.parameters(), *method.projector.parameters()]
    target = [*method.target_backbone.parameters(), *method.target_projector.parameters()]
    return online, target


def test_loss_decreases_on_fixed_batch() -> None:
    torch.manual_seed(0)
    method = build_method("byol", TinyConvNet(), FEAT, **SMALL)
    losses = train(method, *image_views(), steps=20)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


def test_target_starts_as_frozen_copy_and_ignores_the_optimiser() -> None:
    torch.manual_seed(0)
    method = build_method("byol", TinyConvNet(), FEAT, **SMALL)
    online, target = online_and_target(method)
    assert len(online) == len(target) > 0
    for o, t in zip(online, target, strict=True):
        assert torch.equal(o, t) and o is not t
        assert not t.requires_grad
    before = [t.clone() for t in target]
    opt = torch.optim.SGD(method.parameters(), lr=0.1)  # all parameters: frozen ones must be skipped
    method(*image_views()).loss.backward()
    opt.step()
    assert all(t.grad is None for t in target)
    assert all(torch.equal(t, b) for t, b in zip(target, before, strict=True))
    assert not all(torch.equal(o, b) for o, b in zip(online, before, strict=True))


@pytest.mark.parametrize(("step", "total"), [(0, 10), (3, 10), (9, 10)])
def test_target_update_follows_cosine_schedule(step: int, total: int) -> None:
    torch.manual_seed(0)
    base = 0.9
    method = build_method("byol", TinyConvNet(), FEAT, base_momentum=base, **SMALL)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.5)
    method(*image_views()).loss.backward()
    opt.step()
    online, target = online_and_target(method)
    old_target = [t.clone() for t in target]
    old_online = [o.detach().clone() for o in online]

    method.on_step_end(step, total)

    m = 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2
    assert method.momentum == pytest.approx(m)
    for t, t0, o in zip(target, old_target, old_online, strict=True):
        torch.testing.assert_close(t, m * t0 + (1 - m) * o, rtol=0, atol=1e-6)
    gap_before = sum((t0 - o).abs().sum() for t0, o in zip(old_target, old_online, strict=True))
    gap_after = sum((t - o).abs().sum() for t, o in zip(target, old_online, strict=True))
    assert gap_after < gap_before
    assert not any(p.requires_grad for p in target)


def test_momentum_is_one_at_the_last_step() -> None:
    torch.manual_seed(0)
    method = build_method("byol", TinyConvNet(), FEAT, **SMALL)
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    _, target = online_and_target(method)
    before = [t.clone() for t in target]
    method.on_step_end(10, 10)
    assert method.momentum == 1.0
    assert all(torch.equal(t, b) for t, b in zip(target, before, strict=True))


def test_output_and_topology_views() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    method = build_method("byol", TinyDiagramNet(), FEAT, **SMALL)
    out = method(diagram_view(6, g), diagram_view(6, g))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.features.shape == (6, FEAT)
    assert set(out.metrics) == {"loss", "momentum"}
    assert all(p.grad is not None for p in method.predictor.parameters())
    assert method.encoder is method.backbone


def test_registry_and_config_errors() -> None:
    method = build_method("byol", TinyConvNet(), FEAT, base_momentum=0.95, **SMALL)
    assert isinstance(method, BYOL) and method.cfg.base_momentum == 0.95
    cfg = BYOLConfig()
    assert (cfg.proj_hidden_dim, cfg.proj_dim, cfg.pred_hidden_dim) == (4096, 256, 4096)
    assert cfg.base_momentum == 0.99
    with pytest.raises(ValueError, match=r"\['temperature'\].*valid keys.*'base_momentum'"):
        build_method("byol", TinyConvNet(), FEAT, temperature=0.1)
    with pytest.raises(ValueError, match=r"base_momentum must be in \[0.0, 1.0\], got -0.1"):
        build_method("byol", TinyConvNet(), FEAT, base_momentum=-0.1)
    with pytest.raises(ValueError, match="pred_hidden_dim must be > 0, got 0"):
        build_method("byol", TinyConvNet(), FEAT, pred_hidden_dim=0)
    with pytest.raises(ValueError, match=r"step must be in \[0, 10\], got -1"):
        build_method("byol", TinyConvNet(), FEAT, **SMALL).on_step_end(-1, 10)


def test_timm_backbone_is_deep_copied_into_the_target() -> None:
    timm = pytest.importorskip("timm")

    class TimmImage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = timm.create_model("resnet10t", pretrained=False, num_classes=0)

        def forward(self, view: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.model(view["image"])

    torch.manual_seed(0)
    backbone = TimmImage()
    method = build_method("byol", backbone, backbone.model.num_features, **SMALL)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
    method(*image_views(batch=4)).loss.backward()
    opt.step()
    method.on_step_end(0, 5)
    target_conv = method.target_backbone.model.conv1[0].weight
    assert target_conv is not backbone.model.conv1[0].weight and not target_conv.requires_grad
    assert not torch.equal(target_conv, backbone.model.conv1[0].weight)
