"""DINO method: the student learns its teacher's targets, teacher EMA, centre and temperature schedules."""

from __future__ import annotations

import math

import pytest
import torch
from method_helpers import FEAT, TinyConvNet, TinyDiagramNet, diagram_view, image_views, train
from torch import nn

from topo.trainer.methods import DINO, DINOConfig, build_method

torch.set_num_threads(1)

SMALL = {"head_hidden_dim": 256, "bottleneck_dim": 64, "out_dim": 64}


def online_and_target(method: DINO) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    online = [*method.backbone.parameters(), *method.head.parameters()]
    target = [*method.teacher_backbone.parameters(), *method.teacher_head.parameters()]
    return online, target


def test_student_learns_a_fixed_teacher() -> None:
    # With its full dynamics on one 8-image batch the DINO loss is not monotone (the centre flattens the
    # teacher, the warm-up raises its temperature), so the optimisation path is tested against a frozen,
    # sharp teacher: momentum 1 and centre momentum 1 keep the targets fixed.
    torch.manual_seed(0)
    method = build_method(
        "dino",
        TinyConvNet(),
        FEAT,
        base_momentum=1.0,
        center_momentum=1.0,
        warmup_teacher_temp=0.01,
        teacher_temp=0.01,
        **SMALL,
    )
    _, target = online_and_target(method)
    before = [t.clone() for t in target]
    losses = train(method, *image_views(), steps=15)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]
    assert all(torch.equal(t, b) for t, b in zip(target, before, strict=True))


def test_full_dynamics_run_and_update_centre() -> None:
    torch.manual_seed(0)
    method = build_method("dino", TinyConvNet(), FEAT, **SMALL)
    losses = train(method, *image_views(), steps=5)
    assert all(math.isfinite(x) for x in losses)
    assert method.loss_fn.center.abs().sum() > 0


@pytest.mark.parametrize(("step", "total"), [(0, 10), (4, 10), (9, 10)])
def test_teacher_update_follows_cosine_schedule(step: int, total: int) -> None:
    torch.manual_seed(0)
    base = 0.9
    method = build_method("dino", TinyConvNet(), FEAT, base_momentum=base, **SMALL)
    online, target = online_and_target(method)
    for o, t in zip(online, target, strict=True):
        assert torch.equal(o, t) and o is not t and not t.requires_grad
    initial = [o.detach().clone() for o in online]
    opt = torch.optim.SGD(method.parameters(), lr=0.5)  # includes the frozen teacher: must be skipped
    method(*image_views()).loss.backward()
    opt.step()
    old_target = [t.clone() for t in target]
    old_online = [o.detach().clone() for o in online]
    assert all(torch.equal(t, i) for t, i in zip(old_target, initial, strict=True))

    method.on_step_end(step, total)

    m = 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2
    assert method.momentum == pytest.approx(m)
    for t, t0, o in zip(target, old_target, old_online, strict=True):
        torch.testing.assert_close(t, m * t0 + (1 - m) * o, rtol=0, atol=1e-6)
    assert not all(torch.equal(t, t0) for t, t0 in zip(target, old_target, strict=True))


def test_teacher_temperature_warm_up() -> None:
    method = build_method("dino", TinyConvNet(), FEAT, warmup_teacher_temp_frac=0.5, **SMALL)
    total = 20  # warm-up over 10 steps
    assert method.teacher_temp == pytest.approx(0.04)
    seen = []
    for step in range(total):
        method.on_step_end(step, total)
        seen.append(method.teacher_temp)
    # after step s, the temperature is set for step s + 1: 0.04 + 0.03 * min((s + 1) / 10, 1)
    expected = [0.04 + 0.03 * min((s + 1) / 10, 1.0) for s in range(total)]
    assert seen == pytest.approx(expected)
    # checkpointed with the model: a fresh method resumes at the saved temperature
    resumed = build_method("dino", TinyConvNet(), FEAT, warmup_teacher_temp_frac=0.5, **SMALL)
    resumed.load_state_dict(method.state_dict())
    assert resumed.teacher_temp == method.teacher_temp == pytest.approx(0.07)
    no_warmup = build_method("dino", TinyConvNet(), FEAT, warmup_teacher_temp_frac=0.0, **SMALL)
    assert no_warmup.teacher_temp == pytest.approx(0.07)


def test_forward_uses_scheduled_temperature_and_reports_metrics() -> None:
    torch.manual_seed(0)
    method = build_method("dino", TinyConvNet(), FEAT, **SMALL)
    method.teacher_temp = 0.05
    out = method(*image_views())
    assert set(out.metrics) == {"loss", "teacher_entropy", "teacher_temp", "momentum"}
    assert out.metrics["teacher_temp"] == pytest.approx(0.05)
    assert 0.0 <= out.metrics["teacher_entropy"] <= math.log(SMALL["out_dim"]) + 1e-4
    assert out.features.shape == (8, FEAT) and not out.features.requires_grad


def test_eval_mode_leaves_centre_alone() -> None:
    torch.manual_seed(0)
    method = build_method("dino", TinyConvNet(), FEAT, **SMALL).eval()
    with torch.no_grad():
        method(*image_views())
    assert torch.equal(method.loss_fn.center, torch.zeros(1, SMALL["out_dim"]))


def test_topology_views() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    method = build_method("dino", TinyDiagramNet(), FEAT, **SMALL)
    out = method(diagram_view(6, g), diagram_view(6, g))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in method.backbone.parameters())


def test_registry_and_config_errors() -> None:
    method = build_method("dino", TinyConvNet(), FEAT, student_temp=0.2, **SMALL)
    assert isinstance(method, DINO) and method.loss_fn.student_temp == 0.2
    cfg = DINOConfig()
    assert (cfg.head_hidden_dim, cfg.bottleneck_dim, cfg.out_dim) == (2048, 256, 4096)
    assert (cfg.student_temp, cfg.warmup_teacher_temp, cfg.teacher_temp) == (0.1, 0.04, 0.07)
    assert (cfg.center_momentum, cfg.base_momentum) == (0.9, 0.996)
    with pytest.raises(ValueError, match=r"\['n_crops'\].*valid keys.*'out_dim'"):
        build_method("dino", TinyConvNet(), FEAT, n_crops=8)
    with pytest.raises(ValueError, match=r"warmup_teacher_temp_frac must be in \[0.0, 1.0\], got 2"):
        build_method("dino", TinyConvNet(), FEAT, warmup_teacher_temp_frac=2)
    with pytest.raises(ValueError, match="teacher_temp must be > 0, got 0"):
        build_method("dino", TinyConvNet(), FEAT, teacher_temp=0)


def test_gradients_are_clipped_per_parameter_and_prototypes_frozen_at_first() -> None:
    torch.manual_seed(0)
    method = build_method("dino", TinyConvNet(), FEAT, clip_grad=0.5, freeze_last_layer_frac=0.1, **SMALL)
    v1, v2 = image_views(8, 0)

    def grads_after(step: int) -> list[torch.Tensor | None]:
        method.zero_grad(set_to_none=True)
        (method(v1, v2).loss * 1e4).backward()  # large enough that every gradient exceeds the clip norm
        method.before_optimizer_step(step, 100)
        return [p.grad for p in (*method.backbone.parameters(), *method.head.parameters())]

    early = grads_after(9)  # 9 < 0.1 · 100: the prototypes are still frozen
    assert method.head.prototypes.grad is None
    assert all(g.norm() <= 0.5 + 1e-5 for g in early if g is not None)
    late = grads_after(10)
    assert method.head.prototypes.grad is not None
    norms = [float(g.norm()) for g in late if g is not None]
    assert max(norms) == pytest.approx(0.5, rel=1e-4)  # clipped to the norm, not below it


def test_clipping_can_be_switched_off() -> None:
    torch.manual_seed(0)
    method = build_method("dino", TinyConvNet(), FEAT, clip_grad=0.0, freeze_last_layer_frac=0.0, **SMALL)
    v1, v2 = image_views(8, 0)
    (method(v1, v2).loss * 1e4).backward()
    before = [p.grad.clone() for p in method.backbone.parameters() if p.grad is not None]
    method.before_optimizer_step(0, 100)
    after = [p.grad for p in method.backbone.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert max(float(g.norm()) for g in after) > 0.5
