"""``topo store verify``: the whole store against its contract, then every chunk against its recorded checksum.

What is checked, in order (every problem is reported, not only the first):

* the contract (:meth:`Store.problems`): attributes, arrays (dtype, shape), the manifest, and the root digest
  (:mod:`~topo.store_schema.seal`), which covers attributes, array metadata, manifest and checksum table;
* that a root digest was recorded at all (a store finished by an older topo has none);
* checksum-table coverage: every chunk of every per-sample array has exactly one entry, with that chunk's range;
* no unknown files: nothing in the store that the layout does not declare (a directory or a packed zip; the
  temporary files of an interrupted write, which are never read nor packed, are left out);
* calibration tables, when the store says it has them: present and readable;
* unless ``fast``: every chunk re-read and compared with its checksum (the expensive part).
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topo.store_schema.errors import StoreError
from topo.store_schema.integrity import block_digest
from topo.store_schema.layout import CHUNK_ARRAYS, StoreFiles, arrays_for
from topo.store_schema.location import Location
from topo.store_schema.members import member_filter
from topo.store_schema.seal import SEAL_KEY, SEAL_PROBLEM
from topo.store_schema.store import Store, open_store

MAX_LISTED = 10  # unknown files or uncovered chunks named in one problem; the rest are counted


@dataclass
class VerifyReport:
    """Problems found (empty when the store is valid) and how many chunk checksums were compared."""

    problems: list[str] = field(default_factory=list)
    chunks_checked: int = 0
    fast: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        if self.fast:
            return "valid (root digest, coverage, files; --fast: chunks not re-read)"
        return f"valid; root digest matches; {self.chunks_checked} chunk checksums match"


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _coverage(store: Store, sums: list[dict]) -> list[str]:
    """Every chunk of every per-sample array exactly once in the checksum table, with the chunk's own range."""
    g = store.geometry
    names = [n for n in CHUNK_ARRAYS if n in arrays_for(store.schema_version)]
    seen = Counter((r["array"], r["chunk"]) for r in sums)
    expected = {(n, c) for n in names for c in range(g.num_chunks)}
    out = []
    missing = sorted(expected - set(seen))
    if missing:
        out.append(f"checksum table lacks {len(missing)} chunk(s): {_listed([f'{a}[{c}]' for a, c in missing])}")
    twice = sorted(k for k, v in seen.items() if v > 1)
    if twice:
        out.append(f"checksum table lists chunk(s) more than once: {_listed([f'{a}[{c}]' for a, c in twice])}")
    extra = sorted(k for k in seen if k not in expected)
    if extra:
        out.append(f"checksum table lists unknown chunk(s): {_listed([f'{a}[{c}]' for a, c in extra])}")
    ranges = {c: g.chunk_range(c) for c in range(g.num_chunks)}
    bad = [r for r in sums if ranges.get(r["chunk"], ()) not in ((), (r["start"], r["stop"]))]
    wrong = [f"{r['array']}[{r['chunk']}]" for r in bad]
    if wrong:
        out.append(f"checksum table has wrong sample ranges for: {_listed(wrong)}")
    return out


def _members(loc: Location) -> list[str] | None:
    """Every file of the store as a relative posix path (``None`` for a remote store: not listed)."""
    if loc.kind == "zip":
        with zipfile.ZipFile(loc.path) as zf:
            return [n for n in zf.namelist() if not n.endswith("/")]
    if loc.kind != "dir":
        return None
    root = Path(loc.path)
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()]


def _unknown_files(store: Store) -> list[str]:
    members = _members(store.location)
    if members is None:
        return []
    allowed = member_filter(store.attrs)
    unknown = sorted(m for m in members if not allowed(m))
    if not unknown:
        return []
    return [f"{len(unknown)} file(s) that are not part of a topo store: {_listed(unknown)}"]


def _calibration(store: Store) -> list[str]:
    cal = store.attrs.get("calibration")
    if not cal:
        return []
    out = []
    for name, key in dict(cal.get("tables", {})).items():
        try:
            store.read_table(str(key))
        except StoreError as e:
            out.append(f"calibration table '{name}': {e}")
    return out


def _chunks(store: Store, sums: list[dict], report: VerifyReport) -> None:
    arrays: dict[str, Any] = {}  # name -> zarr array, None where the table names one the store lacks
    for row in sums:
        name = row["array"]
        if name not in arrays:
            try:
                arrays[name] = store.array(name)
            except (KeyError, StoreError) as e:
                report.problems.append(f"checksum table names array {name!r}: {e}")
                arrays[name] = None
        if arrays[name] is None:
            continue
        where = f"array '{name}' chunk {row['chunk']} (samples {row['start']}–{row['stop'] - 1})"
        try:
            block = arrays[name][row["start"] : row["stop"]]
        except Exception as e:  # a truncated or undecodable chunk file
            report.problems.append(f"{where} cannot be read: {e}")
            continue
        if block_digest(np.asarray(block)) != row["sha256"]:
            report.problems.append(f"{where} does not match its checksum: altered or missing")
        report.chunks_checked += 1


def verify_store(where: str | os.PathLike[str] | Location, *, fast: bool = False) -> VerifyReport:
    """Check the whole store (see the module docstring); ``fast`` skips re-reading the chunks."""
    store = open_store(where)
    report = VerifyReport(problems=store.problems(), fast=fast)
    if any(not p.startswith(SEAL_PROBLEM) for p in report.problems):
        return report  # a structural problem: the checks below would only repeat it
    if not (store.attrs.get(SEAL_KEY) or {}).get("root_digest"):
        report.problems.append("no root digest recorded (finished by an older topo): rebuild the store to seal it")
    try:
        sums = store.read_table(StoreFiles.CHECKSUMS).to_pylist()
    except StoreError as e:
        report.problems.append(str(e))
        return report
    report.problems += _coverage(store, sums) + _unknown_files(store) + _calibration(store)
    if not fast:
        _chunks(store, sums, report)
    return report
