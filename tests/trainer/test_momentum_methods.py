"""The momentum encoder shared by BYOL (target), MoCo v3 (momentum encoder) and DINO (teacher).

One set of properties for every method built on :class:`~topo.trainer.methods.momentum.MomentumMethod`: the copy
starts frozen and equal, the optimiser never moves it, each step moves it by the cosine momentum exactly, and the
last step leaves it still. Method-specific behaviour stays in each method's own test file.
"""

from __future__ import annotations

import math

import pytest
import torch
from method_helpers import FEAT, TinyConvNet, TinyDiagramNet, diagram_view, image_views, train
from torch import nn

from topo.trainer.methods import build_method
from topo.trainer.methods.momentum import MomentumMethod

torch.set_num_threads(1)

SMALL = {
    "byol": {"proj_hidden_dim": 32, "proj_dim": 8, "pred_hidden_dim": 32},
    "mocov3": {"proj_hidden_dim": 32, "proj_dim": 8, "pred_hidden_dim": 32},
    "dino": {"head_hidden_dim": 256, "bottleneck_dim": 64, "out_dim": 64},
}
COPIES = {
    "byol": ("target_backbone", "target_projector", "projector"),
    "mocov3": ("momentum_backbone", "momentum_projector", "projector"),
    "dino": ("teacher_backbone", "teacher_head", "head"),
}
METHODS = list(SMALL)


def _build(name: str, backbone: nn.Module | None = None, feat: int = FEAT, **kw) -> MomentumMethod:
    method = build_method(name, backbone or TinyConvNet(), feat, **{**SMALL[name], **kw})
    assert isinstance(method, MomentumMethod)
    return method


def online_and_copy(method: MomentumMethod, name: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    backbone_copy, head_copy, head = COPIES[name]
    online = [*method.backbone.parameters(), *getattr(method, head).parameters()]
    copy_ = [*getattr(method, backbone_copy).parameters(), *getattr(method, head_copy).parameters()]
    return online, copy_


@pytest.mark.parametrize("name", ["byol", "mocov3"])
def test_loss_decreases_on_fixed_batch(name: str) -> None:
    torch.manual_seed(0)
    losses = train(_build(name), *image_views(), steps=20)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


@pytest.mark.parametrize("name", METHODS)
def test_copy_starts_frozen_and_ignores_the_optimiser(name: str) -> None:
    torch.manual_seed(0)
    method = _build(name)
    online, copy_ = online_and_copy(method, name)
    assert len(online) == len(copy_) > 0
    for o, t in zip(online, copy_, strict=True):
        assert torch.equal(o, t) and o is not t
        assert not t.requires_grad
    before = [t.clone() for t in copy_]
    opt = torch.optim.SGD(method.parameters(), lr=0.1)  # all parameters: frozen ones must be skipped
    method(*image_views()).loss.backward()
    opt.step()
    assert all(t.grad is None for t in copy_)
    assert all(torch.equal(t, b) for t, b in zip(copy_, before, strict=True))
    assert not all(torch.equal(o, b) for o, b in zip(online, before, strict=True))


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize(("step", "total"), [(0, 10), (3, 10), (9, 10)])
def test_update_follows_cosine_schedule(name: str, step: int, total: int) -> None:
    torch.manual_seed(0)
    base = 0.9
    method = _build(name, base_momentum=base)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.5)
    method(*image_views()).loss.backward()
    opt.step()
    online, copy_ = online_and_copy(method, name)
    old_copy = [t.clone() for t in copy_]
    old_online = [o.detach().clone() for o in online]

    method.on_step_end(step, total)

    m = 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2
    assert method.momentum == pytest.approx(m)
    for t, t0, o in zip(copy_, old_copy, old_online, strict=True):
        torch.testing.assert_close(t, m * t0 + (1 - m) * o, rtol=0, atol=1e-6)
    gap_before = sum((t0 - o).abs().sum() for t0, o in zip(old_copy, old_online, strict=True))
    gap_after = sum((t - o).abs().sum() for t, o in zip(copy_, old_online, strict=True))
    assert gap_after < gap_before
    assert not any(p.requires_grad for p in copy_)


@pytest.mark.parametrize("name", METHODS)
def test_momentum_is_one_at_the_last_step(name: str) -> None:
    torch.manual_seed(0)
    method = _build(name)
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    _, copy_ = online_and_copy(method, name)
    before = [t.clone() for t in copy_]
    method.on_step_end(10, 10)
    assert method.momentum == 1.0
    assert all(torch.equal(t, b) for t, b in zip(copy_, before, strict=True))


@pytest.mark.parametrize("name", METHODS)
def test_step_out_of_range_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"step must be in \[0, 10\], got 11"):
        _build(name).on_step_end(11, 10)
    with pytest.raises(ValueError, match="total_steps must be >= 1"):
        _build(name).on_step_end(0, 0)


@pytest.mark.parametrize("name", METHODS)
def test_timm_backbone_is_deep_copied(name: str) -> None:
    import timm

    class TimmImage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = timm.create_model("resnet10t", pretrained=False, num_classes=0)

        def forward(self, view: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.model(view["image"])

    torch.manual_seed(0)
    backbone = TimmImage()
    method = _build(name, backbone, backbone.model.num_features, base_momentum=0.5)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
    method(*image_views(batch=4)).loss.backward()
    opt.step()
    method.on_step_end(0, 5)
    copy_conv = getattr(method, COPIES[name][0]).model.conv1[0].weight
    assert copy_conv is not backbone.model.conv1[0].weight and not copy_conv.requires_grad
    assert not torch.equal(copy_conv, backbone.model.conv1[0].weight)


@pytest.mark.parametrize("name", ["byol", "mocov3"])
def test_output_on_topology_views(name: str) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    method = _build(name, TinyDiagramNet())
    out = method(diagram_view(6, g), diagram_view(6, g))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.features.shape == (6, FEAT)
    assert set(out.metrics) == {"loss", "momentum"}
    assert all(p.grad is not None for p in method.predictor.parameters())
    assert method.encoder is method.backbone
