"""``topo eval`` checks the store before it looks for runs: a store it cannot use is a one-line error, exit 2.

The workspace holds no runs at all, so an eval that looked for runs first would report "no finished runs"
instead of what is wrong with the store.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.consoles import use_console_width
from typer.testing import CliRunner

import topo.cli.app as app_mod


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    use_console_width(monkeypatch, 1000)  # one message is one line: nothing wrapped


def _edit_attrs(store: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads((store / "zarr.json").read_text())
    edit(meta["attributes"]["topo"])
    (store / "zarr.json").write_text(json.dumps(meta))


def _schema_2(store: Path) -> None:
    _edit_attrs(store, lambda a: a.update(schema_version="2.0"))


def _no_pd_h0(store: Path) -> None:
    shutil.rmtree(store / "pd_h0")


def _classes_swapped(store: Path) -> None:
    _edit_attrs(store, lambda a: a["dataset"].update(class_names=a["dataset"]["class_names"][::-1]))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_schema_2, "schema_version 2.0, this topo reads schema 1.x"),
        (_no_pd_h0, "array 'pd_h0' is missing"),
        (_classes_swapped, "root digest"),
    ],
    ids=["schema-2.0", "missing-array", "edited-attributes"],
)
def test_eval_refuses_a_store_it_cannot_use_in_one_line(small_store, tmp_path: Path, damage, expected) -> None:
    store = tmp_path / "demo.zarr"
    shutil.copytree(small_store, store)
    damage(store)
    r = CliRunner().invoke(app_mod.app, ["eval", "--store", str(store), "--workspace", str(tmp_path / "ws")])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert expected in lines[0], r.output
    assert "no finished runs" not in r.output and "Traceback" not in r.output


def test_eval_of_a_sound_store_without_runs_says_so(small_store, tmp_path: Path) -> None:
    """The control: the same command on the undamaged store gets as far as looking for runs."""
    r = CliRunner().invoke(app_mod.app, ["eval", "--store", str(small_store), "--workspace", str(tmp_path / "ws")])
    assert r.exit_code == 2 and "no finished runs" in r.output, r.output
