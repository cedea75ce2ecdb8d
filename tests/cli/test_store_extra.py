"""`topo store pack | unpack | export-datalist` command functions, run through typer's CliRunner on a
Typer app built here (independent of cli/app.py), and the datalist itself."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from topo.cli.store_extra import export_datalist_cmd, pack_cmd, unpack_cmd
from topo.store_schema import open_store
from topo.store_schema.datalist import export_datalist
from topo.store_schema.verify import verify_store


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    store_app = typer.Typer()
    app.add_typer(store_app, name="store")
    store_app.command("pack")(pack_cmd)
    store_app.command("unpack")(unpack_cmd)
    store_app.command("export-datalist")(export_datalist_cmd)
    return app


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "250", "NO_COLOR": "1"})


def test_pack_unpack_commands(cli: typer.Typer, runner: CliRunner, small_store: Path, tmp_path: Path) -> None:
    z = tmp_path / "demo.zip"
    r = runner.invoke(cli, ["store", "pack", str(small_store), str(z), "--verify"])
    assert r.exit_code == 0, r.output
    assert "packed" in r.output and open_store(small_store).fingerprint in r.output
    r = runner.invoke(cli, ["store", "pack", str(small_store), str(z)])
    assert r.exit_code == 1 and "exists" in r.output
    out = tmp_path / "copy.zarr"
    r = runner.invoke(cli, ["store", "unpack", str(z), str(out)])
    assert r.exit_code == 0, r.output
    assert "verified" in r.output and verify_store(out).ok
    r = runner.invoke(cli, ["store", "unpack", str(z), str(out)])
    assert r.exit_code == 1 and "not an empty directory" in r.output


def test_unpack_command_names_the_unsafe_member(cli: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("zarr.json", "{}")
        zf.writestr("../../escape.sh", "echo owned")
    r = runner.invoke(cli, ["store", "unpack", str(z), str(tmp_path / "out")])
    assert r.exit_code == 1
    assert "'../../escape.sh'" in r.output and "'..' component" in r.output
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape.sh").exists()


def test_pack_command_refuses_missing_store(cli: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    r = runner.invoke(cli, ["store", "pack", str(tmp_path / "nowhere.zarr"), str(tmp_path / "x.zip")])
    assert r.exit_code == 1 and "no store at" in r.output


def test_export_datalist_command(cli: typer.Typer, runner: CliRunner, small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "datalist.json"
    r = runner.invoke(
        cli, ["store", "export-datalist", str(small_store), str(out), "--split", "train", "--split", "test"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert "training" in doc and "test" in doc and "validation" not in doc
    r = runner.invoke(cli, ["store", "export-datalist", str(small_store), str(out), "--split", "holdout"])
    assert r.exit_code == 1 and "unknown split(s) ['holdout']" in r.output


def test_datalist_content(small_store: Path, tmp_path: Path) -> None:
    st = open_store(small_store)
    out = tmp_path / "dl.json"
    doc = export_datalist(st, out)
    assert json.loads(out.read_text()) == doc
    m = st.manifest().to_pylist()
    assert {k: len(doc[k]) for k in ("training", "validation", "test")} == {
        k: sum(r["split"] == s for r in m) for k, s in (("training", "train"), ("validation", "val"), ("test", "test"))
    }
    assert doc["numTraining"] == len(doc["training"]) and doc["numTest"] == len(doc["test"])
    assert doc["labels"] == {"0": "malignant", "1": "normal, benign"}
    assert doc["fingerprint"] == st.fingerprint
    item = doc["training"][0]
    assert set(item) == {"index", "sample_id", "label", "split", "store", "fingerprint"}
    row = m[item["index"]]
    assert (item["sample_id"], item["label"], item["split"]) == (row["sample_id"], row["label"], "train")
    assert item["store"] == str(small_store.resolve()) and item["fingerprint"] == st.fingerprint
    labels = st.array("labels")[:]
    assert all(labels[i["index"]] == i["label"] for k in ("training", "validation", "test") for i in doc[k])
    ref = export_datalist(st, tmp_path / "url.json", ["val"], store_ref="http://example.invalid/demo.zarr")
    assert set(ref) & {"training", "validation", "test"} == {"validation"}
    assert {i["store"] for i in ref["validation"]} == {"http://example.invalid/demo.zarr"}
