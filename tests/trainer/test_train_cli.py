"""`topo train` passes every option through to the run (checked in the checkpoint it writes)."""

from __future__ import annotations

from typer.testing import CliRunner

from topo.cli.app import app
from topo.trainer.build import encoder_from_checkpoint


def test_train_cli_options_reach_the_checkpoint(calibrated_store, tmp_path):
    args = [
        "train",
        "--store",
        str(calibrated_store),
        "--workspace",
        str(tmp_path),
        "--method",
        "simclr",
        "--stage",
        "topo",
        "--topo-width",
        "32",
        "--no-cross-attention",
        "--epochs",
        "1",
        "--max-steps",
        "1",
        "--batch-size",
        "16",
        "--num-workers",
        "0",
        "--monitor-every",
        "0",
        "--no-progress",
        "--seed",
        "3",
        "--method-option",
        "proj_hidden_dim=32",
        "--method-option",
        "proj_dim=16",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    # The run folder names the non-default options, so this run cannot land in a default run's folder.
    (ck,) = (tmp_path / "runs" / "demo" / "simclr").glob("topo-seed3-*/checkpoints/final.pt")
    assert "tw32" in ck.parent.parent.name and "no-cross-attention" in ck.parent.parent.name
    enc, cfg, _ = encoder_from_checkpoint(str(ck))
    assert cfg.topo_width == 32 and cfg.cross_attention is False and cfg.seed == 3
    assert cfg.method_options == {"proj_hidden_dim": 32, "proj_dim": 16}
    assert sum(p.numel() for p in enc.parameters()) < 1_000_000  # the paper's width 384 has 4.8 M
