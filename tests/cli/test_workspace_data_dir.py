"""Datasets are found in the workspace when no --data-dir is given, and a missing one says where files go."""

from __future__ import annotations

from typer.testing import CliRunner

from topo.cli.app import app
from topo.cli.workspace import default_data_dir


def test_default_data_dirs(tmp_path):
    assert default_data_dir(tmp_path, "demo") is None
    assert default_data_dir(tmp_path, "isic2019") == str(tmp_path / "data" / "isic2019")
    assert default_data_dir(tmp_path, "pathmnist") is None  # the medmnist package's own ~/.medmnist
    (tmp_path / "data" / "medmnist").mkdir(parents=True)
    assert default_data_dir(tmp_path, "pathmnist") == str(tmp_path / "data" / "medmnist")


def test_build_store_without_data_dir_names_the_expected_files(tmp_path):
    res = CliRunner().invoke(app, ["build-store", "--dataset", "isic2019", "--workspace", str(tmp_path)])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert str(tmp_path / "data" / "isic2019") in text.replace(" ", "")
    assert "ISIC_2019_Training_GroundTruth.csv" in text.replace(" ", "")
