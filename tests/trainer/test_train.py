"""The training loop: resume equals an uninterrupted run, refusals, the three stages, and the eval that follows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import check_probe

from topo.store_schema import open_store
from topo.trainer.checkpoint import CheckpointError, check_store_compatible, load_checkpoint, store_identity
from topo.trainer.config import TrainConfig, run_suffix
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


def _common(store, **kw) -> dict:
    """The options of `topo train` as the stage chain receives them (out_dir and stage are its own)."""
    cfg = _cfg(store, "unused", **kw).to_json()
    for k in ("out_dir", "stage", "init_visual", "init_topo"):
        cfg.pop(k)
    cfg["experts"] = tuple(cfg["experts"])
    return cfg


@pytest.mark.slow  # ~90 s on two busy cores
def test_three_stages_then_eval(calibrated_store, tmp_path):
    """--stage all for two seeds (a few steps per stage, plus the compute-matched baseline), then the evaluation."""
    from topo.trainer.eval.run import evaluate
    from topo.trainer.stages import run_stages

    runs = tmp_path / "runs" / "demo"
    for seed in (0, 1):
        common = _common(calibrated_store, method="byol", seed=seed, max_steps=2, method_options=BYOL_SMALL)
        done = run_stages("all", common, runs / "byol")
        assert [d.label for d in done] == ["visual", "topo", "joint", "baseline (compute-matched)"]
        for d in done:
            assert d.result.steps == 2 and torch.isfinite(torch.tensor(d.result.final_loss))
        # The compute-matched baseline trains for stage-1 + stage-3 epochs, in its own folder.
        visual, joint, matched = done[0].cfg, done[2].cfg, done[3].cfg
        assert matched.stage == "visual" and matched.epochs == visual.epochs + joint.epochs == 4
        assert len({d.cfg.out_dir for d in done}) == 4
    out = evaluate(
        store=str(calibrated_store),
        dataset="demo",
        method="byol",
        runs=runs,
        seeds=[0, 1],
        report_dir=tmp_path / "reports",
        suffix=run_suffix(joint),
    )
    assert {(r.variant, r.seed) for r in out.results} == {
        ("baseline", 0),
        ("baseline", 1),
        ("topocl", 0),
        ("topocl", 1),
    }
    baseline = next(r for r in out.results if r.variant == "baseline")
    assert baseline.extras["row"] == "baseline (compute-matched)"
    assert baseline.extras["budget"]["epochs_per_stage"] == {"visual": 4}
    topocl = next(r for r in out.results if r.variant == "topocl")
    assert topocl.extras["budget"]["epochs_per_stage"] == {"visual": 2, "topo": 2, "joint": 2}
    # Images through the visual encoder, from the runs' summaries: max_steps caps every stage at 2 steps here, so
    # the matched run saw half of TopoCL's; without the cap both see (stage 1 + stage 3) epochs of images.
    assert topocl.extras["budget"]["images_seen"] == 2 * 2 * 32 == 2 * baseline.extras["budget"]["images_seen"]
    text = out.markdown.read_text()
    assert "demo" in text and "byol" in text.lower()
    assert "stage-1 only" in text and "majority ACC" in text and "images seen" in text
    assert out.figures and Path(out.figures[0]).stat().st_size > 0
    # An independent scikit-learn probe on the features eval cached agrees with every reported ACC (bench's check).
    agreement = check_probe.compare(tmp_path / "reports" / "results_demo_byol.json")
    assert len(agreement) == 4
    for r in agreement:
        assert abs(r["reported_acc"] - r["sklearn_acc"]) <= 0.01, r
    # Joint stage was initialised from stages 1 and 2: its checkpoint records them.
    ck = load_checkpoint(Path(done[2].cfg.out_dir) / "checkpoints" / "final.pt")
    assert Path(ck["config"]["init_visual"]).parent.parent == Path(done[0].cfg.out_dir)


def test_workers_default_to_none_for_whole_batches_and_two_for_per_sample_views():
    from topo.trainer.config import TrainConfig
    from topo.trainer.train import loader_workers

    assert TrainConfig(store="s", out_dir="o").num_workers is None
    assert loader_workers(None, per_sample_views=False) == 0
    assert loader_workers(None, per_sample_views=True) == 2
    assert loader_workers(3, per_sample_views=False) == 3 and loader_workers(0, per_sample_views=True) == 0
