"""``topo cue-check``: prints the pixel and diagram-feature lines; refuses what it cannot make, without a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from topo.cli.app import app


def test_cue_check_prints_both_lines():
    res = CliRunner().invoke(app, ["cue-check", "--n-train", "40", "--n-test", "20", "--size", "24"])
    assert res.exit_code == 0, res.output
    assert "raw pixels" in res.output and "diagram feats" in res.output and "40 train / 20 test" in res.output


def test_cue_check_refuses_other_datasets_and_tiny_images():
    res = CliRunner().invoke(app, ["cue-check", "--dataset", "demo"])
    assert res.exit_code == 2 and "only --dataset synthetic-betti" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["cue-check", "--size", "8"])
    assert res.exit_code == 2 and "at least 24" in res.output
