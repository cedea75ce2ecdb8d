"""The one-way dependency arrows between the packages: cli → pipeline, trainer → store_schema.

Every import of a ``topo`` module is read from the source (including imports inside functions), so a lazy import
cannot hide a wrong arrow. The trainer may use the pipeline's kernels (persistence, augmentation operators) and
nothing else of it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "store_schema": "topo.store_schema",
    "pipeline": "topo.pipeline",
    "trainer": "topo.trainer",
    "cli": "topo.cli",
}
TRAINER_MAY_USE = ("topo.pipeline.augment", "topo.pipeline.persistence")
MAX_LINES = 400
# Known to be over the limit and due to be split (the CLI's stage chaining into trainer/stages.py, the probe into
# search, fitting and reporting); listed here so that no other module can grow past the limit unnoticed.
OVERSIZE_TO_SPLIT: set[str] = set()


def _module_files() -> dict[str, Path]:
    out = {}
    for folder, pkg in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


def _topo_imports(path: Path, module: str, known: set[str] | frozenset[str] = frozenset()) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "topo")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.split(".")[0] != "topo":
                continue
            # `from topo.pipeline import augment` imports the module topo.pipeline.augment, not the package
            subs = {f"{name}.{a.name}" for a in node.names} & known
            found.update(subs or {name})
    return found


def _allowed(importer: str, imported: str) -> bool:
    def within(name: str, pkg: str) -> bool:
        return name == pkg or name.startswith(pkg + ".")

    if within(importer, "topo.cli"):
        return True
    if within(imported, "topo.store_schema"):
        return True
    if within(importer, "topo.store_schema"):
        return False
    if within(importer, "topo.pipeline"):
        return within(imported, "topo.pipeline")
    if within(importer, "topo.trainer"):
        return within(imported, "topo.trainer") or any(within(imported, k) for k in TRAINER_MAY_USE)
    return True


def test_every_package_is_found():
    mods = _module_files()
    for pkg in PACKAGES.values():
        assert pkg in mods, f"{pkg} not found"
    assert len(mods) > 40


def test_imports_point_one_way():
    wrong = []
    mods = _module_files()
    for module, path in mods.items():
        for imported in sorted(_topo_imports(path, module, set(mods))):
            if not _allowed(module, imported):
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "imports against the arrows cli → pipeline, trainer → store_schema:\n" + "\n".join(wrong)


def test_the_rule_itself_rejects_wrong_arrows():
    assert not _allowed("topo.store_schema.diagrams", "topo.pipeline.persistence")
    assert not _allowed("topo.pipeline.job", "topo.trainer.train")
    assert not _allowed("topo.trainer.train", "topo.pipeline.calibrate")
    assert not _allowed("topo.trainer.data", "topo.cli.app")
    assert _allowed("topo.trainer.topo_views", "topo.pipeline.augment")
    assert _allowed("topo.cli.app", "topo.pipeline.job")


def test_relative_imports_are_resolved(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from ..calibrate import tables\nfrom . import y\n")
    assert _topo_imports(f, "topo.trainer.eval.x") == {"topo.trainer.calibrate", "topo.trainer.eval"}


def test_training_does_not_import_ray():
    code = "import sys, topo.trainer.train, topo.trainer.eval.run; print('ray' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False", "importing the trainer pulls in Ray"


@pytest.mark.parametrize("folder", list(PACKAGES))
def test_production_modules_are_small(folder):
    big = {
        str(p.relative_to(REPO)): n
        for p in (REPO / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES and str(p.relative_to(REPO)) not in OVERSIZE_TO_SPLIT
    }
    assert not big, f"modules over {MAX_LINES} lines: {big}"
