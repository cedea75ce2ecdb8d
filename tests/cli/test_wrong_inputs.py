"""Every command with the wrong inputs users typically give: a one-line error and an exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.consoles import use_console_width
from typer.testing import CliRunner

import topo.cli.app as app_mod


@pytest.fixture(autouse=True)
def narrow_console(monkeypatch):
    """80 columns, as in a plain terminal or a CI log."""
    use_console_width(monkeypatch, 80)


def _cases(ws: Path, files: dict[str, Path]) -> list[list[str]]:
    w = ["--workspace", str(ws)]
    nowhere = "http://127.0.0.1:9/nothing.zarr"
    return [
        ["build-store", "--dataset", "no_such_dataset", *w],
        ["build-store", "--dataset", "npz", "--data-dir", str(ws / "missing.npz"), *w],
        ["build-store", "--roi", "no_such_roi", *w],
        ["store", "info", *w],  # empty workspace
        ["store", "info", "--store", str(ws / "nothing.zarr")],
        ["store", "info", "--store", nowhere],
        ["store", "info", str(files["text"])],
        ["store", "verify", "--store", nowhere],
        ["store", "verify", "--store", str(files["text"])],
        ["store", "verify", "--store", "zip::http://127.0.0.1:9/x.zip"],
        ["store", "pack", str(ws / "nothing.zarr"), str(ws / "out.zip")],
        ["store", "pack", str(files["store"]), str(ws / "out.tar")],
        ["store", "pack", str(files["store"]), str(files["existing_zip"])],
        ["store", "unpack", str(ws / "missing.zip"), str(ws / "unpacked")],
        ["store", "unpack", str(files["text"]), str(ws / "unpacked2")],
        ["store", "export-datalist", str(ws / "nothing.zarr"), str(ws / "d.json")],
        ["store", "export-datalist", str(files["store"]), str(ws / "d.json"), "--split", "nope"],
        ["calibrate-aug", "--store", str(ws / "nothing.zarr")],
        ["calibrate-aug", "--store", str(files["store"]), "--bands", "weak=nonsense"],
        ["train", "--backbone", "resnet5O", "--store", str(files["store"]), *w],
        ["train", "--store", str(ws / "nothing.zarr"), "--backbone", "resnet18", *w],
        ["train", "--method", "nope", "--store", str(files["store"]), "--backbone", "resnet18", *w],
        ["train", "--stage", "nope", "--store", str(files["store"]), "--backbone", "resnet18", *w],
        ["eval", "--store", str(ws / "nothing.zarr"), *w],
        ["eval", "--store", str(files["store"]), "--seeds", "a,b", *w],
        ["report", str(ws / "missing.json")],
        ["report", str(files["text"])],
        ["export", str(ws / "no_run"), str(ws / "exported")],
        ["export", str(files["text"]), str(ws / "exported")],
        ["fetch-sam", "--model", "vit_nope"],
    ]


@pytest.mark.slow
def test_wrong_inputs_give_errors_not_tracebacks(ray_session, small_store, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("not a store\n")
    existing = tmp_path / "existing.zip"
    existing.write_bytes(b"")
    files = {"store": small_store, "text": text, "existing_zip": existing}
    runner = CliRunner()
    bad = []
    for args in _cases(ws, files):
        res = runner.invoke(app_mod.app, args)
        uncaught = res.exception is not None and not isinstance(res.exception, SystemExit)
        if res.exit_code == 0 or uncaught or "Traceback" in res.output:
            bad.append(f"{' '.join(args)} -> exit {res.exit_code}, {type(res.exception).__name__}: {res.output[-300:]}")
    assert not bad, "\n".join(bad)


def test_unknown_backbone_suggests_close_names(tmp_path):
    res = CliRunner().invoke(app_mod.app, ["train", "--backbone", "resnet5O", "--workspace", str(tmp_path)])
    assert res.exit_code == 2 and "resnet50" in res.output and "Traceback" not in res.output


def test_pack_refuses_an_existing_output_with_exit_1_and_writes_mode_0644(small_store, tmp_path):
    target = tmp_path / "demo.zip"
    res = CliRunner().invoke(app_mod.app, ["store", "pack", str(small_store), str(target)])
    assert res.exit_code == 0, res.output
    assert target.stat().st_mode & 0o777 == 0o644
    again = CliRunner().invoke(app_mod.app, ["store", "pack", str(small_store), str(target)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    forced = CliRunner().invoke(app_mod.app, ["store", "pack", str(small_store), str(target), "--overwrite"])
    assert forced.exit_code == 0, forced.output


def test_store_is_an_option_everywhere_and_the_fingerprint_is_never_cut(small_store):
    from topo.store_schema import open_store

    fp = open_store(small_store).fingerprint
    res = CliRunner().invoke(app_mod.app, ["store", "info", "--store", str(small_store)])
    assert res.exit_code == 0, res.output
    assert f"fingerprint: {fp}" in res.output  # whole, on one line, at 80 columns
    old = CliRunner().invoke(app_mod.app, ["store", "verify", str(small_store)])
    assert old.exit_code == 0 and "deprecated" in old.output
    both = CliRunner().invoke(app_mod.app, ["store", "verify", str(small_store), "--store", "/elsewhere.zarr"])
    assert both.exit_code == 2 and "two stores" in both.output


def test_help_texts_end_in_full_sentences():
    import click
    import typer.main

    cmd = typer.main.get_command(app_mod.app)
    ctx = click.Context(cmd)
    todo = [(cmd, ctx)]
    cut = []
    while todo:
        c, cx = todo.pop()
        if c.help and not c.help.strip().endswith((".", ")", "?", "!")):
            cut.append(f"{cx.command_path}: {c.help!r}")
        for p in c.params:
            h = getattr(p, "help", None)
            if h and not h.rstrip().endswith((".", ")", "?", "!")):
                cut.append(f"{cx.command_path} {p.name}: {h!r}")
        if isinstance(c, click.Group):
            for name, sub in c.commands.items():
                todo.append((sub, click.Context(sub, info_name=name, parent=cx)))
    assert not cut, "\n".join(cut)
