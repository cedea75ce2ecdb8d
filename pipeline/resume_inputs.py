"""The resume input check: a resumed build must read the same input as the build it continues.

The build config says *how* a store is built, not *what from*: a resumed build pointed at other images of the same
count would otherwise mix two datasets in one store. So the first run records a cheap listing of its input -- per
sample its id, reference, label, split, and the size and modification time of the file it is read from -- in
``_build/inputs.json``, and every resumed run compares its own listing with it, refusing a mismatch and naming
what changed. Absolute paths are left out, so a dataset moved (with its times kept) still resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from topo.pipeline.sources import SampleRecord, Source
from topo.store_schema import StoreError, StoreFiles
from topo.store_schema.store import write_bytes_atomic

MAX_NAMED = 5  # changed samples named in the refusal; the rest are counted


class InputMismatchError(StoreError):
    """A resumed build's input differs from the input the store was started with."""


def listing(source: Source, records: list[SampleRecord]) -> list[list[Any]]:
    """``[sample_id, source_ref, label, split, size, mtime_ns]`` per record (size/mtime ``None`` without a file)."""
    stats: dict[Path, tuple[int | None, int | None]] = {}
    out = []
    for r, path in zip(records, source.input_files(records), strict=True):
        if path is not None and path not in stats:
            try:
                st = os.stat(path)
                stats[path] = (st.st_size, st.st_mtime_ns)
            except OSError:  # a missing file fails its sample; for the listing it is "no file"
                stats[path] = (None, None)
        size, mtime = stats[path] if path is not None else (None, None)
        out.append([r.sample_id, r.source_ref, r.label, r.split, size, mtime])
    return out


def _describe(old: list[Any], new: list[Any]) -> str:
    fields = ("reference", "label", "split", "size", "mtime")
    what = [f"{f} {a!r} -> {b!r}" for f, a, b in zip(fields, old[1:], new[1:], strict=True) if a != b]
    return f"{new[0]} ({', '.join(what)})"


def differences(old: list[list[Any]], new: list[list[Any]]) -> str | None:
    """A sentence naming what changed between two listings, or ``None`` if they match."""
    if old == new:
        return None
    before, after = {r[0]: r for r in old}, {r[0]: r for r in new}
    added = [k for k in after if k not in before]
    removed = [k for k in before if k not in after]
    changed = [_describe(before[k], after[k]) for k in after if k in before and before[k] != after[k]]
    parts = []
    if changed:
        parts.append(f"{len(changed)} sample(s) changed, e.g. {'; '.join(changed[:MAX_NAMED])}")
    if added:
        parts.append(f"{len(added)} added, e.g. {', '.join(added[:MAX_NAMED])}")
    if removed:
        parts.append(f"{len(removed)} removed, e.g. {', '.join(removed[:MAX_NAMED])}")
    if not parts:
        parts.append("the same samples in another order")
    return "; ".join(parts)


def check_or_record(store_root: str | os.PathLike[str], current: list[list[Any]]) -> None:
    """Record the listing on the first run; on a resumed run, refuse one that differs from it.

    Raises:
        InputMismatchError: the input changed since the store was started (the message names what changed).
    """
    path = Path(store_root) / StoreFiles.BUILD_INPUTS
    if not path.exists():
        write_bytes_atomic(path, json.dumps(current, separators=(",", ":")).encode())
        return
    try:
        recorded = json.loads(path.read_text())
    except ValueError as e:
        raise InputMismatchError(f"{path} is unreadable ({e}); use --overwrite to rebuild the store") from e
    diff = differences(recorded, current)
    if diff is not None:
        raise InputMismatchError(
            f"{store_root} was started from other input than this run reads: {diff}. Point --data-dir at the "
            "original data, or use --overwrite to rebuild the store from this input"
        )
