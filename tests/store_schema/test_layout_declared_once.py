"""The store layout is declared once, in ``store_schema``, and nowhere re-spelled.

Code outside ``store_schema`` (``pipeline/``, ``trainer/``, ``cli/``) may *refer* to an array through the schema's
validating accessor (``store.array("pd_h0")`` raises, listing the valid names, for a name the schema lacks) and may
use the trainer's sample keys (``sample["pd_h0"]``, a dict the trainer defines). It may not:

* spell a store member's file name (``"manifest.parquet"``, ``"_build/chunks"``, ``"calibration/table.parquet"``);
* invent new members by extending a schema path (``f"{StoreFiles.CALIBRATION_PARTS}/block-0.parquet"``,
  ``root / StoreFiles.CALIBRATION_DIR / "x.parquet"``): new members are declared in ``StoreFiles``;
* create arrays (``create_array``) or open them by a spelled name on a raw Zarr group
  (``zarr.open_group(p)["pd_h0"]``, ``group["images"]``, ``zarr.open_array(p, path="labels")``);
* join an array name onto a path (``root / "roi_masks"``);
* name an array the schema does not have in ``.array("...")``.

The checker is a small AST walk (docstrings and comments are ignored); ``test_the_checker_catches_respellings``
shows it finds each pattern, so a clean result means something.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from topo.store_schema import ARRAYS, StoreFiles

REPO = Path(__file__).resolve().parents[2]
CHECKED_DIRS = ("pipeline", "trainer", "cli")

_MEMBERS = {v for k, v in vars(StoreFiles).items() if k.isupper() and isinstance(v, str)}
MEMBER_PATHS = sorted(m for m in _MEMBERS if "/" in m or "." in m)
"""Store member names that can only mean a file (``manifest.parquet``, ``_build/chunks``): flagged anywhere."""
MEMBER_DIRS = sorted(m for m in _MEMBERS if m not in MEMBER_PATHS)
"""Bare folder names (``_build``, ``calibration``): also attrs keys, so flagged only as path components."""
ARRAY_NAMES = frozenset(ARRAYS)
ZARR_OPENERS = frozenset({"open_group", "open", "group", "open_array", "open_consolidated", "create_array", "create"})
ARRAY_MAKERS = frozenset(
    {"create_array", "create_dataset", "require_array", "require_dataset", "empty", "zeros", "full"}
)


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _mentions_storefiles(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "StoreFiles" for n in ast.walk(node))


def _is_zarr_call(node: ast.AST) -> bool:
    """``zarr.open_group(...)``, ``zarr.open(...)`` and the like."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ZARR_OPENERS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "zarr"
    )


def _raw_group_names(tree: ast.AST) -> set[str]:
    """Names bound to a raw Zarr group: ``g = zarr.open_group(...)`` or ``g = store.group``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and (
            _is_zarr_call(node.value) or (isinstance(node.value, ast.Attribute) and node.value.attr == "group")
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def respellings(source: str, filename: str = "<src>") -> list[str]:
    """Every place in ``source`` that re-spells the store layout, as ``file:line: what``."""
    tree = ast.parse(source, filename)
    docs = _docstrings(tree)
    groups = _raw_group_names(tree)
    found: list[str] = []

    def hit(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        s = _str(node)
        if s is not None and id(node) not in docs:
            for member in MEMBER_PATHS:
                if member in s:
                    hit(node, f"store member name {member!r} spelled outside store_schema (use StoreFiles)")
            for member in MEMBER_DIRS if not any(m in s for m in MEMBER_PATHS) else ():
                if s.startswith(f"{member}/") or f"/{member}/" in s or s.endswith(f"/{member}"):
                    hit(node, f"store folder {member!r} spelled in a path outside store_schema (use StoreFiles)")
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.FormattedValue) and _mentions_storefiles(first.value):
                rest = "".join(_str(v) or "{}" for v in node.values[1:])
                if rest.startswith("/"):
                    hit(node, f"new store member '{{StoreFiles...}}{rest}' declared outside store_schema")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = _str(node.right)
            if right is not None and right in ARRAY_NAMES:
                hit(node, f"array name {right!r} joined onto a path")
            elif right is not None and right in MEMBER_DIRS:
                hit(node, f"store folder {right!r} joined onto a path outside store_schema (use StoreFiles)")
            elif right is not None and _mentions_storefiles(node.left):
                hit(node, f"new store member {right!r} joined onto a StoreFiles path")
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            args = [*node.args, *(k.value for k in node.keywords)]
            literals = [v for v in (_str(a) for a in args) if v is not None]
            if fname == "create_array":
                hit(node, "array created outside store_schema (create_store declares every array)")
            elif _is_zarr_call(node) and ARRAY_NAMES & set(literals):
                hit(node, f"array {sorted(ARRAY_NAMES & set(literals))} opened by name through zarr")
            elif fname in ARRAY_MAKERS and isinstance(func, ast.Attribute) and ARRAY_NAMES & set(literals):
                hit(node, f"array {sorted(ARRAY_NAMES & set(literals))} made by name outside store_schema")
            if fname == "array" and isinstance(func, ast.Attribute) and node.args:
                name = _str(node.args[0])
                if name is not None and name not in ARRAY_NAMES:
                    hit(node, f".array({name!r}): the schema has no such array ({', '.join(ARRAYS)})")
            if fname == "join" and isinstance(func, ast.Attribute) and (ARRAY_NAMES | set(MEMBER_DIRS)) & set(literals):
                hit(node, "array or store folder name joined onto a path")
        if isinstance(node, ast.Subscript):
            key = _str(node.slice)
            base = node.value
            raw = (
                _is_zarr_call(base)
                or (isinstance(base, ast.Name) and base.id in groups)
                or (isinstance(base, ast.Attribute) and base.attr == "group")
            )
            if key is not None and key in ARRAY_NAMES and raw:
                hit(node, f"array {key!r} read from a raw Zarr group by a spelled name (use store.array)")
    return found


def _checked_files() -> list[Path]:
    files = [p for d in CHECKED_DIRS for p in sorted((REPO / d).rglob("*.py")) if "__pycache__" not in p.parts]
    assert len(files) > 20, "the checked folders look empty"
    return files


@pytest.mark.parametrize("folder", CHECKED_DIRS)
def test_layout_is_not_respelled_outside_store_schema(folder):
    problems = []
    for path in _checked_files():
        if path.relative_to(REPO).parts[0] == folder:
            problems += respellings(path.read_text(), str(path.relative_to(REPO)))
    assert not problems, "the store layout is re-spelled outside store_schema:\n" + "\n".join(problems)


def test_every_array_name_used_through_the_accessor_exists():
    used = set()
    for path in _checked_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "array"
                and node.args
                and _str(node.args[0])
            ):
                used.add(_str(node.args[0]))
    assert used, "no store.array(...) call found: the scan is not looking where it should"
    assert used <= ARRAY_NAMES


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('m = pq.read_table(root / "manifest.parquet")', "store member name 'manifest.parquet'"),
        ('p = f"{root}/_build/chunks/{c:07d}.parquet"', "store member name '_build/chunks'"),
        ('key = f"{StoreFiles.CALIBRATION_PARTS}/block-{b:06d}.parquet"', "new store member"),
        ('p = root / StoreFiles.CALIBRATION_DIR / "extra.parquet"', "new store member 'extra.parquet'"),
        ('g = zarr.open_group(p)\nx = g["pd_h0"][:]', "array 'pd_h0' read from a raw Zarr group"),
        ('x = zarr.open_group(p, mode="r")["images"]', "array 'images' read from a raw Zarr group"),
        ('x = store.group["labels"][:]', "array 'labels' read from a raw Zarr group"),
        ('a = zarr.open_array(p, path="roi_masks")', "array ['roi_masks'] opened by name through zarr"),
        ('g.create_array("n_h1", shape=(3,), dtype="int16")', "array created outside store_schema"),
        ('d = root / "status"', "array name 'status' joined onto a path"),
        ('d = os.path.join(root, "pd_h1")', "array or store folder name joined onto a path"),
        ('d = root / "_build" / name', "store folder '_build' joined onto a path"),
        ('p = f"{root}/calibration/{name}"', "store folder 'calibration' spelled in a path"),
        ('x = store.array("pd_h2")', ".array('pd_h2'): the schema has no such array"),
    ],
)
def test_the_checker_catches_respellings(snippet, expected):
    found = respellings(snippet)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    "snippet",
    [
        'x = store.array("pd_h0").oindex[idx]',  # the schema's validating accessor
        'view = {"pd_h0": t.h0, "n_h0": t.n_h0}\ny = view["pd_h0"]',  # the trainer's sample API
        'blocks = {n: ARRAYS[n].empty(4, g) for n in CHUNK_ARRAYS}\nblocks["labels"][0] = 1',
        "m = store.read_table(StoreFiles.MANIFEST)",
        'def f():\n    """Reads manifest.parquet and _build/chunks."""',
        'c = attrs.get("calibration")',
        'spec = {"full_diagrams": True, "k0": 48}',
        'counts = manifest["status"].to_pylist()',  # a manifest column, declared in MANIFEST_SCHEMA
    ],
)
def test_the_checker_allows_references(snippet):
    assert respellings(snippet) == []
