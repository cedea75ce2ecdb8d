"""Packaging: the four code folders install as ``topo.*`` and nothing else; a built wheel works on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = {
    "pipeline": "topo.pipeline",
    "trainer": "topo.trainer",
    "store_schema": "topo.store_schema",
    "cli": "topo.cli",
}
TOP_LEVEL_NAMES = ("pipeline", "cli", "trainer", "store_schema")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _packages_on_disk() -> set[str]:
    found = {"topo"}
    for folder, dotted in CODE_DIRS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join([dotted, *rel.parts]))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    st = _pyproject()["tool"]["setuptools"]
    listed = set(st["packages"])
    on_disk = _packages_on_disk()
    assert on_disk - listed == set(), (
        f"sub-packages missing from [tool.setuptools] packages: {sorted(on_disk - listed)}"
    )
    assert listed - on_disk == set(), f"listed packages with no __init__.py: {sorted(listed - on_disk)}"
    assert st["package-dir"] == {"topo": "topo", **{v: k for k, v in CODE_DIRS.items()}}
    assert _pyproject()["project"]["scripts"] == {"topo": "topo.cli.app:main"}


def test_no_top_level_code_module_is_importable(tmp_path):
    # Outside the repository, so the current directory cannot supply them.
    code = f"import importlib.util as u; print([n for n in {TOP_LEVEL_NAMES!r} if u.find_spec(n) is not None])"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
    site = Path(sysconfig.get_paths()["purelib"])
    assert not [n for n in TOP_LEVEL_NAMES if (site / n).exists() or (site / f"{n}.py").exists()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a clean copy of the sources (the repository itself is left untouched)."""
    import setuptools

    # Built without isolation (no network needed) by the venv's setuptools, which the dev extra pins to a release
    # that writes wheels itself (70.1+; older ones need the `wheel` package).
    version = tuple(int(x) for x in setuptools.__version__.split(".")[:2])
    assert version >= (70, 1), f"setuptools {setuptools.__version__} is older than the dev extra asks (>=77)"
    src = tmp_path_factory.mktemp("src") / "topo"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("topo", *CODE_DIRS):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "-o",
            str(dist),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (whl,) = dist.glob("topo-0.1.0-*.whl")
    return whl


def test_wheel_holds_only_the_topo_namespace_and_the_demo_data(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read("topo-0.1.0.dist-info/entry_points.txt").decode()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"topo", "topo-0.1.0.dist-info"}
    for pkg in _packages_on_disk():
        assert pkg.replace(".", "/") + "/__init__.py" in names, pkg
    assert "topo/pipeline/data/breastmnist.npz" in names
    assert "topo/cli/app.py" in names and "topo/store_schema/layout.py" in names
    assert "topo = topo.cli.app:main" in entry_points


@pytest.mark.slow  # ~20 s on two busy cores
def test_the_installed_wheel_runs_without_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # Install the wheel first, while the new environment sees only itself (pip must not touch the project's venv).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Dependencies come from the project's venv, appended as a plain path: its .pth files (the editable finder
    # that maps topo.* to this repository among them) are not processed.
    (site / "_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    probe = (
        "import importlib.util, sys, topo, topo.cli.app, topo.pipeline.job, topo.store_schema, topo.trainer;"
        "from topo.pipeline.sources import demo_path;"
        "print(topo.cli.app.__file__); print(topo.pipeline.job.__file__); print(demo_path().is_file());"
        "print(sys.modules.get('__editable___topo_0_1_0_finder'));"
        f"print([n for n in {TOP_LEVEL_NAMES!r} if importlib.util.find_spec(n) is not None])"
    )
    res = subprocess.run([str(py), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    app_file, job_file, has_demo, finder, tops = res.stdout.strip().splitlines()
    assert Path(app_file).is_relative_to(site) and Path(job_file).is_relative_to(site), res.stdout
    assert str(REPO) not in app_file
    assert has_demo == "True" and finder == "None" and tops == "[]"
    help_env = {**env, "COLUMNS": "200"}
    res = subprocess.run(
        [str(venv / "bin" / "topo"), "--help"], cwd=tmp_path, env=help_env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert " build-store " in res.stdout and " store " in res.stdout
