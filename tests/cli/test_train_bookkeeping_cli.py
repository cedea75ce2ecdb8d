"""`topo train` refuses, with a clear message and no traceback, what would silently mislead."""

from __future__ import annotations

from typer.testing import CliRunner

from topo.cli.app import app


def test_joint_stage_without_inits_is_refused(small_store, tmp_path) -> None:
    r = CliRunner().invoke(
        app, ["train", "--store", str(small_store), "--stage", "joint", "--workspace", str(tmp_path)]
    )
    assert r.exit_code == 2, r.output
    assert "--init-visual RUN|none" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(
        app,
        [
            "train",
            "--store",
            str(small_store),
            "--stage",
            "visual",
            "--resume",
            "--overwrite",
            "--workspace",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 2 and "exclude each other" in r.output
