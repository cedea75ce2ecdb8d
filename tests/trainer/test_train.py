"""The training loop: resume equals an uninterrupted run, refusals, the three stages, and the eval that follows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from topo.store_schema import open_store
from topo.trainer.checkpoint import CheckpointError, check_store_compatible, load_checkpoint, store_identity
from topo.trainer.config import TrainConfig
from topo.trainer.train import train

SMALL = {"proj_hidden_dim": 64, "proj_dim": 32}
BYOL_SMALL = {"proj_hidden_dim": 64, "proj_dim": 32, "pred_hidden_dim": 64}


def _cfg(store, out, **kw) -> TrainConfig:
    base = dict(
        store=str(store),
        out_dir=str(out),
        method="simclr",
        stage="visual",
        backbone="resnet18",
        small_input=False,
        epochs=2,
        batch_size=32,
        warmup_epochs=0.5,
        num_workers=0,
        monitor_every=0,
        progress=False,
        log_every=1,
        checkpoint_every=2,
        method_options=SMALL,
        topo_width=32,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow  # ~18 s on two busy cores
def test_resume_mid_epoch_gives_the_weights_of_an_uninterrupted_run(small_store, tmp_path):
    torch.set_num_threads(1)
    full = train(_cfg(small_store, tmp_path / "full", max_steps=4))
    part = _cfg(small_store, tmp_path / "part", max_steps=2)
    train(part)
    resumed = train(_cfg(small_store, tmp_path / "part", max_steps=4), resume=True)
    assert full.steps == resumed.steps == 4
    a = load_checkpoint(full.checkpoint)
    b = load_checkpoint(resumed.checkpoint)
    assert a["loader"] == b["loader"]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_resume_refuses_another_configuration(small_store, tmp_path):
    train(_cfg(small_store, tmp_path / "r", max_steps=2))
    with pytest.raises(CheckpointError, match="lr"):
        train(_cfg(small_store, tmp_path / "r", max_steps=3, lr=5e-3), resume=True)


def test_store_compatibility_names_both_values(small_store):
    st = open_store(small_store)
    saved = store_identity(st)
    check_store_compatible(saved, st, same_data=True)
    with pytest.raises(CheckpointError, match="k0 is 48 in the store but 32 in the checkpoint"):
        check_store_compatible({**saved, "k0": 32}, st, same_data=False)
    with pytest.raises(CheckpointError, match="fingerprint"):
        check_store_compatible({**saved, "fingerprint": "sha256:x"}, st, same_data=True)


@pytest.mark.slow  # ~50 s on two busy cores
def test_three_stages_then_eval(calibrated_store, tmp_path):
    """Stage 1 → 2 → 3 for two seeds (a few steps each), then the linear-probe evaluation and its report."""
    from topo.trainer.eval.run import evaluate

    runs = tmp_path / "runs" / "demo"
    for seed in (0, 1):
        finals = {}
        for stage in ("visual", "topo", "joint"):
            extra = {"init_visual": finals.get("visual"), "init_topo": finals.get("topo")} if stage == "joint" else {}
            res = train(
                _cfg(
                    calibrated_store,
                    runs / "byol" / f"{stage}-seed{seed}",
                    method="byol",
                    stage=stage,
                    seed=seed,
                    max_steps=2,
                    method_options=BYOL_SMALL,
                    **extra,
                )
            )
            assert res.steps == 2 and torch.isfinite(torch.tensor(res.final_loss))
            finals[stage] = str(res.checkpoint)
    out = evaluate(
        store=str(calibrated_store),
        dataset="demo",
        method="byol",
        runs=runs,
        seeds=[0, 1],
        report_dir=tmp_path / "reports",
    )
    assert {(r.variant, r.seed) for r in out.results} == {
        ("baseline", 0),
        ("baseline", 1),
        ("topocl", 0),
        ("topocl", 1),
    }
    text = out.markdown.read_text()
    assert "demo" in text and "byol" in text.lower()
    assert out.figures and Path(out.figures[0]).stat().st_size > 0
    # Joint stage was initialised from stages 1 and 2: its checkpoint records them.
    ck = load_checkpoint(runs / "byol" / "joint-seed0" / "checkpoints" / "final.pt")
    assert ck["config"]["init_visual"].endswith("visual-seed0/checkpoints/final.pt")


def test_workers_default_to_none_for_whole_batches_and_two_for_per_sample_views():
    from topo.trainer.config import TrainConfig
    from topo.trainer.train import loader_workers

    assert TrainConfig(store="s", out_dir="o").num_workers is None
    assert loader_workers(None, per_sample_views=False) == 0
    assert loader_workers(None, per_sample_views=True) == 2
    assert loader_workers(3, per_sample_views=False) == 3 and loader_workers(0, per_sample_views=True) == 0
