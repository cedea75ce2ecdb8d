"""Create, open, validate and describe stores."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from topo.store_schema.errors import StoreError, StoreIncompleteError, StoreVersionError
from topo.store_schema.layout import (
    ARRAYS,
    ATTRS_KEY,
    SCHEMA_VERSION,
    Geometry,
    StoreFiles,
    arrays_for,
    version_tuple,
)
from topo.store_schema.location import Location
from topo.store_schema.manifest import MANIFEST_COLUMNS_SINCE, MANIFEST_SCHEMA
from topo.store_schema.seal import seal_problem

REQUIRED_ATTRS = ("schema_version", "dataset", "geometry", "persistence", "roi", "build", "provenance")


def _codec_names(array: zarr.Array) -> str:
    return " ".join(c.cname.value if hasattr(c, "cname") else type(c).__name__ for c in array.compressors)


def _major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError as e:
        raise StoreVersionError(f"store schema_version {version!r} is not a semantic version") from e


def check_schema_version(found: str) -> None:
    """Refuse a store written under another major version, naming both."""
    if _major(found) != _major(SCHEMA_VERSION):
        raise StoreVersionError(
            f"store has schema_version {found}, this topo reads schema {SCHEMA_VERSION.split('.')[0]}.x "
            f"(version {SCHEMA_VERSION}); rebuild the store or use a topo release that reads {found}"
        )


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a reader (or a resumed build) never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_table_atomic(path: Path, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    write_bytes_atomic(path, buf.getvalue())


class Store:
    """A topo store opened for reading (or, for the build driver, for writing).

    Args:
        location: where the store lives.
        group: the opened Zarr group.
        writable: whether arrays and attributes may be written.
    """

    def __init__(self, location: Location, group: zarr.Group, *, writable: bool = False) -> None:
        self.location = location
        self.group = group
        self.writable = writable
        raw = dict(group.attrs).get(ATTRS_KEY)
        if not isinstance(raw, dict):
            raise StoreError(f"{location} is a Zarr group but not a topo store (no '{ATTRS_KEY}' attributes)")
        self._attrs: dict[str, Any] = raw
        check_schema_version(str(raw.get("schema_version", "0")))

    # --- attributes -------------------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        return self._attrs

    @property
    def geometry(self) -> Geometry:
        return Geometry.from_json(self._attrs["geometry"])

    @property
    def num_samples(self) -> int:
        return self.geometry.num_samples

    @property
    def class_names(self) -> list[str]:
        return list(self._attrs["dataset"]["class_names"])

    @property
    def split_names(self) -> list[str]:
        return list(self._attrs["dataset"]["split_names"])

    @property
    def fingerprint(self) -> str | None:
        return self._attrs.get("fingerprint")

    @property
    def is_complete(self) -> bool:
        return bool(self._attrs.get("build", {}).get("complete", False))

    @property
    def persistence_spec(self) -> dict[str, Any]:
        return dict(self._attrs["persistence"])

    def update_attrs(self, **updates: Any) -> None:
        """Merge top-level keys into the topo attributes. Only the build driver calls this."""
        if not self.writable:
            raise StoreError(f"{self.location} is open read-only")
        self._attrs = {**self._attrs, **updates}
        self.group.attrs.update({ATTRS_KEY: self._attrs})

    # --- members ----------------------------------------------------------------------------------------------
    @property
    def schema_version(self) -> str:
        """The schema version the store was written with (its arrays are :func:`~.layout.arrays_for` it)."""
        return str(self._attrs.get("schema_version", SCHEMA_VERSION))

    def array(self, name: str) -> zarr.Array:
        if name not in ARRAYS:
            raise KeyError(f"unknown array {name!r}; schema v1 arrays: {', '.join(ARRAYS)}")
        if name not in arrays_for(self.schema_version):
            raise StoreError(
                f"{self.location} has schema {self.schema_version}, which predates array {name!r} "
                f"(added in {ARRAYS[name].since}); rebuild the store to get it"
            )
        try:
            return self.group[name]  # type: ignore[return-value]
        except KeyError as e:
            raise StoreError(f"{self.location}: array '{name}' is missing") from e

    def read_table(self, key: str) -> pa.Table:
        try:
            data = self.location.read_bytes(key)
        except FileNotFoundError as e:
            raise StoreError(f"{self.location}: {key} is missing") from e
        try:
            return pq.read_table(io.BytesIO(data))
        except (pa.ArrowException, OSError) as e:  # truncated or not Parquet at all
            raise StoreError(f"{self.location}: {key} is not readable Parquet (truncated or corrupt): {e}") from e

    def manifest(self) -> pa.Table:
        if not self.is_complete:
            raise StoreIncompleteError(
                f"{self.location}: build incomplete, the manifest is written when it finishes; "
                "re-run the same build-store command to resume"
            )
        return _with_later_columns(self.read_table(StoreFiles.MANIFEST))

    def full_diagrams(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Every (birth, death) pair of one sample, ``(H0 (n,2), H1 (m,2))`` float32, in the documented order.

        Raises:
            StoreError: the store was built without ``--full-diagrams``, or the sample failed.
        """
        if not self.persistence_spec.get("full_diagrams"):
            raise StoreError(f"{self.location} was built without --full-diagrams; only top-k diagrams are stored")
        g = self.geometry
        if not 0 <= index < g.num_samples:
            raise IndexError(f"sample index {index} outside [0, {g.num_samples})")
        table = self.read_table(StoreFiles.full_diagrams_part(index // g.chunk_size))
        row = table.slice(index % g.chunk_size, 1).to_pylist()[0]
        if row["h0"] is None:
            raise StoreError(f"{self.location}: sample {index} failed; it has no diagram")
        return tuple(np.asarray(row[d], np.float32).reshape(-1, 2) for d in ("h0", "h1"))  # type: ignore[return-value]

    def split_code(self, split: str) -> int:
        try:
            return self.split_names.index(split)
        except ValueError as e:
            raise ValueError(f"unknown split {split!r}; this store has {self.split_names}") from e

    def indices(self, splits: str | list[str] | None = None, *, usable_only: bool = True) -> np.ndarray:
        """Sample indices of the given splits, optionally excluding failed and unwritten samples."""
        keep = np.ones(self.num_samples, dtype=bool)
        if splits is not None:
            wanted = [self.split_code(s) for s in ([splits] if isinstance(splits, str) else splits)]
            keep &= np.isin(self.array("splits")[:], wanted)
        if usable_only:
            keep &= np.isin(self.array("status")[:], [0, 1])
        return np.flatnonzero(keep)

    # --- checks -----------------------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every way the store departs from the contract, as readable sentences (empty if valid)."""
        out: list[str] = []
        missing = [k for k in REQUIRED_ATTRS if k not in self._attrs]
        if missing:
            return [f"attribute(s) missing: {', '.join(missing)}"]
        g = self.geometry
        for spec in arrays_for(self.schema_version).values():
            try:
                arr = self.group[spec.name]
            except KeyError:
                out.append(f"array '{spec.name}' is missing")
                continue
            except (ValueError, TypeError) as e:  # malformed zarr.json (JSONDecodeError is a ValueError)
                out.append(f"array '{spec.name}' has unreadable metadata: {e}")
                continue
            if not isinstance(arr, zarr.Array):
                out.append(f"'{spec.name}' is a group, expected an array")
                continue
            if np.dtype(arr.dtype) != np.dtype(spec.dtype):
                out.append(f"array '{spec.name}' has dtype {arr.dtype}, expected {spec.dtype}")
            if tuple(arr.shape) != spec.shape(g):
                out.append(f"array '{spec.name}' has shape {tuple(arr.shape)}, expected {spec.shape(g)}")
        if not self.is_complete:
            out.append("build incomplete (re-run the same build-store command to resume)")
        elif not self.location.exists(StoreFiles.MANIFEST):
            out.append(f"{StoreFiles.MANIFEST} is missing")
        else:
            try:
                m = self.read_table(StoreFiles.MANIFEST)
            except StoreError as e:
                return [*out, str(e)]
            if m.num_rows != g.num_samples:
                out.append(f"manifest has {m.num_rows} rows, expected {g.num_samples}")
            v = version_tuple(self.schema_version)
            expected = [f.name for f in MANIFEST_SCHEMA if version_tuple(MANIFEST_COLUMNS_SINCE.get(f.name, "0")) <= v]
            absent = [name for name in expected if name not in m.column_names]
            if absent:
                out.append(f"manifest lacks column(s): {', '.join(absent)}")
            # Last, and only for an otherwise sound store: a precise problem above says more than "digest differs".
            sealed = None if out else seal_problem(self.location, self._attrs)
            if sealed:
                out.append(sealed)
        return out

    def validate(self) -> None:
        """Raise :class:`StoreError` (or :class:`StoreIncompleteError`) naming every problem found."""
        problems = self.problems()
        if not problems:
            return
        msg = f"{self.location}: " + "; ".join(problems)
        if problems == ["build incomplete (re-run the same build-store command to resume)"]:
            raise StoreIncompleteError(msg)
        raise StoreError(msg)

    def describe(self) -> dict[str, Any]:
        """A summary for ``topo store info``: what a person needs to know before using the store."""
        a = self._attrs
        d: dict[str, Any] = {
            "location": str(self.location),
            "schema_version": a.get("schema_version"),
            "fingerprint": a.get("fingerprint"),
            "dataset": a.get("dataset", {}),
            "geometry": a.get("geometry", {}),
            "persistence": a.get("persistence", {}),
            "roi": a.get("roi", {}),
            "build": a.get("build", {}),
            "provenance": a.get("provenance", {}),
            "calibration": a.get("calibration"),
            "codecs": {name: _codec_names(self.array(name)) for name in ("images", "labels")},
        }
        if self.is_complete and self.location.exists(StoreFiles.MANIFEST):
            m = self.manifest().select(["split", "status", "label", "roi_quality"]).to_pandas()
            d["counts"] = {
                "by_split": {str(k): int(v) for k, v in m["split"].value_counts().sort_index().items()},
                "by_status": {str(k): int(v) for k, v in m["status"].value_counts().sort_index().items()},
            }
            d["counts"].update(_quality_counts(m, list(a.get("dataset", {}).get("class_names", []))))
        return d


def open_store(where: str | os.PathLike[str] | Location, *, mode: Literal["r", "r+"] = "r") -> Store:
    """Open a store for reading (``mode='r'``, the default) or, for the build driver, ``'r+'``.

    Raises:
        StoreError: nothing there, or not a topo store.
        StoreVersionError: written under another schema major version.
    """
    loc = where if isinstance(where, Location) else Location.parse(where)
    if mode not in ("r", "r+"):
        raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
    if loc.kind == "dir" and not (Path(loc.path) / "zarr.json").exists():
        raise StoreError(f"no store at {loc.path} (no zarr.json there)")
    try:
        group = zarr.open_group(loc.zarr_store(read_only=mode == "r"), mode=mode, zarr_format=3)
    except (FileNotFoundError, KeyError, ValueError) as e:
        raise StoreError(f"cannot open a store at {loc}: {e}") from e
    return Store(loc, group, writable=mode == "r+")


def _with_later_columns(m: pa.Table) -> pa.Table:
    """A manifest of an older minor version, with the columns added since as nulls (so readers need no branch)."""
    for f in MANIFEST_SCHEMA:
        if f.name not in m.column_names and f.name in MANIFEST_COLUMNS_SINCE:
            m = m.append_column(f, pa.nulls(m.num_rows, f.type))
    return m


def _quality_counts(m: Any, class_names: list[str]) -> dict[str, dict[str, int]]:
    """ROI quality (``ok`` / ``suspect`` / ``n/a``) by class, for ``topo store info``; empty for pre-1.1 stores."""
    if m["roi_quality"].isna().all():
        return {}
    kind = m["roi_quality"].fillna("n/a").str.split(":").str[0]
    out: dict[str, dict[str, int]] = {}
    for label, q in sorted(zip(m["label"], kind, strict=True)):
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        out.setdefault(f"roi_quality_{name}", {}).setdefault(q, 0)
        out[f"roi_quality_{name}"][q] += 1
    return out
