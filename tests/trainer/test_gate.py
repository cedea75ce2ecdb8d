"""The MoE gate while training: statistics in log.csv / gates.csv, the CV² importance loss, the uniform ablation."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from topo.trainer.config import TrainConfig
from topo.trainer.gate_monitor import GateStats, importance_loss
from topo.trainer.models.fusion import EXPERTS, MoEFusion
from topo.trainer.train import train


def test_importance_loss_is_zero_when_balanced_and_grows_with_collapse():
    balanced = torch.full((8, 5), 0.2)
    assert float(importance_loss(balanced)) == pytest.approx(0.0, abs=1e-9)
    collapsed = torch.tensor([[0.96, 0.01, 0.01, 0.01, 0.01]] * 8)
    half = torch.tensor([[0.6, 0.1, 0.1, 0.1, 0.1]] * 8)
    assert float(importance_loss(collapsed)) > float(importance_loss(half)) > 0.1
    logits = torch.randn(8, 5, requires_grad=True)
    importance_loss(torch.softmax(logits, -1)).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_gate_stats_mean_entropy_and_top_fraction():
    s = GateStats(("vision", "topology"))
    s.update(torch.tensor([[0.9, 0.1], [0.8, 0.2]]))
    s.update(torch.tensor([[0.3, 0.7]]))
    out = s.summary()
    assert out["gate_mean_vision"] == pytest.approx(2.0 / 3)
    assert out["gate_top_vision"] == pytest.approx(2 / 3) and out["gate_top_topology"] == pytest.approx(1 / 3)
    h = [-(a * math.log(a) + b * math.log(b)) for a, b in ((0.9, 0.1), (0.8, 0.2), (0.3, 0.7))]
    assert out["gate_entropy"] == pytest.approx(sum(h) / 3)
    s.reset()
    assert math.isnan(s.summary()["gate_entropy"])


def test_uniform_gate_gives_equal_fixed_weights():
    f = MoEFusion(visual_dim=16, topo_dim=8, proj_dim=8, expert_dim=8, heads=2, gate="uniform")
    out = f(torch.randn(3, 16), torch.randn(3, 8))
    assert torch.equal(out.gate_weights, torch.full((3, len(EXPERTS)), 1 / len(EXPERTS)))
    with pytest.raises(ValueError, match="unknown gate"):
        MoEFusion(visual_dim=16, gate="sparse")
    with pytest.raises(ValueError, match="gate-balance"):
        TrainConfig(store="s", out_dir="o", gate_balance=-1)


def _joint(store, out, **kw) -> TrainConfig:
    return TrainConfig(
        store=str(store),
        out_dir=str(out),
        method="simclr",
        stage="joint",
        backbone="resnet18",
        small_input=False,
        epochs=1,
        batch_size=128,
        warmup_epochs=0.5,
        num_workers=0,
        monitor_every=0,
        progress=False,
        log_every=1,
        checkpoint_every=0,
        method_options={"proj_hidden_dim": 64, "proj_dim": 32},
        topo_width=32,
        **kw,
    )


def _rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_joint_stage_logs_the_gate_every_epoch(calibrated_store, tmp_path):
    torch.set_num_threads(1)
    train(_joint(calibrated_store, tmp_path / "learned", gate_balance=1.0))
    log, gates = _rows(tmp_path / "learned" / "log.csv"), _rows(tmp_path / "learned" / "gates.csv")
    assert len(gates) == 1 and gates[0]["epoch"] == "0"
    means = [float(gates[0][f"gate_mean_{e}"]) for e in EXPERTS]
    tops = [float(gates[0][f"gate_top_{e}"]) for e in EXPERTS]
    assert sum(means) == pytest.approx(1.0, abs=1e-3) and sum(tops) == pytest.approx(1.0, abs=1e-3)
    assert 0 < float(gates[0]["gate_entropy"]) <= math.log(len(EXPERTS)) + 1e-4
    assert all(f"gate_mean_{e}" in log[-1] for e in EXPERTS) and "gate_entropy" in log[-1]
    assert (tmp_path / "learned" / "tb").is_dir()

    # the uniform ablation reaches the model the trainer builds
    from topo.store_schema import open_store
    from topo.trainer.build import build_backbone

    enc = build_backbone(
        _joint(calibrated_store, tmp_path / "u", gate="uniform"), open_store(calibrated_store).geometry
    )
    assert enc.fusion.gate_mode == "uniform"
