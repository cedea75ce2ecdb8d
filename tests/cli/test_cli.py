"""The ``topo`` command: help, build-store into a workspace, store info/verify, workspace resolution, errors.

In-process calls go through ``typer.testing.CliRunner`` and reuse the session's Ray; ``--help`` and ``--version`` go
through the installed console script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.consoles import use_console_width
from typer.testing import CliRunner

import topo.cli.app as app_mod
from topo.cli.workspace import WORKSPACE_ENV, WorkspaceError, resolve_store, store_name, workspace_root

TOPO = Path(sys.executable).with_name("topo")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps at 80 columns when not on a terminal; a wide console keeps long values on one line."""
    use_console_width(monkeypatch, 400)


def topo(*args: str):
    return CliRunner().invoke(app_mod.app, [str(a) for a in args])


@pytest.fixture(scope="module")
def workspace(ray_session, tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    res = CliRunner().invoke(
        app_mod.app, ["build-store", "--dataset", "demo", "--workspace", str(ws), "--num-cpus", "1", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    return ws


def test_help_lists_the_commands():
    env = {**os.environ, "COLUMNS": "200"}
    res = subprocess.run([str(TOPO), "--help"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    for cmd in ("build-store", "calibrate-aug", "train", "eval", "store"):
        assert f" {cmd} " in res.stdout, f"{cmd} missing from `topo --help`"
    res = subprocess.run(
        [str(TOPO), "store", "--help"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert res.returncode == 0 and " info " in res.stdout and " verify " in res.stdout
    res = subprocess.run([str(TOPO), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "topo 0.1.0"


def test_build_store_into_the_workspace(workspace):
    store = workspace / "stores" / "demo.zarr"
    assert (store / "zarr.json").is_file() and (store / "manifest.parquet").is_file()
    res = topo("build-store", "--dataset", "demo", "--workspace", workspace, "--no-progress")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps long lines at the terminal's width
    assert "already complete; nothing to do" in text and "0 / 13" in text


def test_store_info_shows_the_filtration_and_licence(workspace):
    res = topo("store", "info", "--workspace", workspace)
    assert res.exit_code == 0, res.output
    text = res.output
    assert "CC BY 4.0" in text and "breastmnist" in text and "malignant" in text
    assert "sublevel cubical (top_dimensional_cells)" in text
    assert "grey in [0,1]; RGB -> ITU-R BT.601 luma" in text
    assert "top-48 H0, top-96 H1; persistence descending" in text
    assert "set to the maximum filtration value inside the ROI" in text
    assert "otsu" in text and "complete" in text and "780 × 28×28×1" in text
    res = topo("store", "info", "--workspace", workspace, "--json")
    d = json.loads(res.output)
    assert d["persistence"]["direction"] == "sublevel" and d["dataset"]["license"] == "CC BY 4.0"
    assert d["counts"]["by_split"] == {"test": 156, "train": 546, "val": 78}
    assert d["fingerprint"].startswith("sha256:")


def test_store_verify_accepts_a_good_store(workspace):
    res = topo("store", "verify", "--workspace", workspace)
    assert res.exit_code == 0, res.output
    assert "valid" in res.output


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("delete", "array 'pd_h0' is missing"),
        ("dtype", "array 'n_h1' has dtype int32, expected int16"),
        ("major", "store has schema_version 2.0.0, this topo reads schema 1.x"),
    ],
)
def test_store_verify_rejects_a_damaged_store_naming_the_problem(workspace, tmp_path, damage, message):
    bad = tmp_path / "bad.zarr"
    shutil.copytree(workspace / "stores" / "demo.zarr", bad)
    if damage == "delete":
        shutil.rmtree(bad / "pd_h0")
    elif damage == "dtype":
        meta = json.loads((bad / "n_h1" / "zarr.json").read_text())
        meta["data_type"] = "int32"
        (bad / "n_h1" / "zarr.json").write_text(json.dumps(meta))
    else:
        meta = json.loads((bad / "zarr.json").read_text())
        meta["attributes"]["topo"]["schema_version"] = "2.0.0"
        (bad / "zarr.json").write_text(json.dumps(meta))
    res = topo("store", "verify", bad)
    assert res.exit_code == 1, res.output
    assert message in res.output


def test_an_incomplete_store_is_reported_as_incomplete(ray_session, tmp_path):
    out = tmp_path / "part.zarr"
    res = topo("build-store", "--dataset", "demo", "--out", out, "--max-chunks", "2", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "no (re-run to resume; 2 chunks done now)" in res.output
    res = topo("store", "verify", out)
    assert res.exit_code == 1
    assert "build incomplete (re-run the same build-store command to resume)" in res.output
    assert "checksum" not in res.output and "missing" not in res.output and "dtype" not in res.output
    res = topo("store", "info", out)
    assert res.exit_code == 0 and "INCOMPLETE (re-run build-store to resume)" in res.output


def test_another_configuration_at_the_same_out_is_refused(workspace):
    res = topo("build-store", "--dataset", "demo", "--workspace", workspace, "--roi", "none", "--no-progress")
    assert res.exit_code == 2
    assert "was built with another configuration (differs in: roi)" in res.output and "--overwrite" in res.output


def test_bad_dataset_arguments_are_explained(tmp_path):
    res = topo("build-store", "--dataset", "mnist", "--out", tmp_path / "x.zarr", "--no-progress")
    assert res.exit_code == 2
    assert (
        "unknown dataset 'mnist'; valid: demo, pathmnist" in res.output
        and "isic2019, kvasir, folder, npz" in res.output
    )
    res = topo("build-store", "--dataset", "octmnist", "--size", "224", "--data-dir", tmp_path, "--no-progress")
    assert res.exit_code == 2 and "octmnist_224.npz" in res.output
    res = topo("build-store", "--dataset", "demo", "--out", tmp_path / "x.zarr", "--image-codec", "gzip")
    assert res.exit_code == 2 and "unknown image codec 'gzip'; valid: lz4, zstd" in res.output
    assert not (tmp_path / "x.zarr").exists()


# --------------------------------------------------------------------------------------------- workspace
def test_workspace_resolution_through_the_cli(workspace, tmp_path):
    ws = tmp_path / "ws2"
    res = topo("store", "info", "--workspace", ws)
    assert (
        res.exit_code == 2 and "no store in workspace" in res.output and "topo build-store --dataset NAME" in res.output
    )
    (ws / "stores").mkdir(parents=True)
    shutil.copytree(workspace / "stores" / "demo.zarr", ws / "stores" / "demo.zarr")
    assert topo("store", "verify", "--workspace", ws).exit_code == 0  # the only store
    shutil.copytree(workspace / "stores" / "demo.zarr", ws / "stores" / "pathmnist_224.zarr")
    res = topo("store", "info", "--workspace", ws)
    assert res.exit_code == 2
    assert "several stores in" in res.output and "demo, pathmnist_224" in res.output
    assert "--dataset NAME or --store PATH" in res.output
    assert topo("store", "info", "--workspace", ws, "--dataset", "demo").exit_code == 0
    res = topo("store", "info", "--workspace", ws, "--dataset", "isic2019")
    assert (
        res.exit_code == 2 and "no store for dataset 'isic2019'" in res.output and "demo, pathmnist_224" in res.output
    )
    assert topo("store", "info", str(ws / "stores" / "demo.zarr")).exit_code == 0  # an explicit path wins


def test_resolve_store_rules(tmp_path, monkeypatch):
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    assert workspace_root(None) == Path("topo-workspace")
    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path))
    assert workspace_root(None) == tmp_path and workspace_root(tmp_path / "x") == tmp_path / "x"
    assert store_name("PathMNIST", 224) == "pathmnist_224" and store_name("pathmnist") == "pathmnist"
    assert store_name("isic2019", 224) == "isic2019"
    with pytest.raises(WorkspaceError, match="no store in workspace"):
        resolve_store(tmp_path)
    for name in ("b", "a"):
        (tmp_path / "stores" / f"{name}.zarr").mkdir(parents=True)
        (tmp_path / "stores" / f"{name}.zarr" / "zarr.json").write_text("{}")
    (tmp_path / "stores" / "c.zarr").mkdir()  # no zarr.json: not a store
    with pytest.raises(WorkspaceError, match=r"several stores in .*: a, b; choose one"):
        resolve_store(tmp_path)
    assert resolve_store(tmp_path, dataset="a") == str(tmp_path / "stores" / "a.zarr")
    assert resolve_store(tmp_path, store="s3://bucket/x.zarr", dataset="a") == "s3://bucket/x.zarr"
    shutil.rmtree(tmp_path / "stores" / "b.zarr")
    assert resolve_store(tmp_path) == str(tmp_path / "stores" / "a.zarr")
