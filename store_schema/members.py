"""Which files a store may hold, and how large it may be: shared by ``topo store verify`` and ``unpack``.

A store holds its root ``zarr.json``, each declared array's ``zarr.json`` and chunk keys (``<array>/c/<i>/...``),
the manifest, the checksum table, the build config and input listing, the calibration tables and, when built
with full diagrams, one Parquet part per chunk. Anything else is unknown: verify reports it, unpack refuses it.
Temporary leftovers of interrupted atomic writes (names starting with ``.``, Zarr's ``*.partial``) are never read
nor packed and are left out of the check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from topo.store_schema.layout import Geometry, StoreFiles, arrays_for

_ZARR_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")  # zarr LocalStore's temporary files

# Unpack size budget beyond the arrays' raw size (see :func:`size_budget`).
FIXED_ALLOWANCE = 64 << 20  # metadata, calibration tables, build config
PER_SAMPLE_ALLOWANCE = 4096  # manifest, checksum and input-listing rows


def is_temporary(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    # Leftovers of interrupted atomic writes: topo's ".name.PID.tmp", zarr's "name.<uuid>.partial".
    return name.startswith(".") or bool(_ZARR_PARTIAL.search(name))


def member_filter(attrs: Mapping[str, Any]) -> Callable[[str], bool]:
    """A predicate: whether a relative path is a member the store with topo attributes ``attrs`` may hold."""
    g = Geometry.from_json(attrs["geometry"])
    names = list(arrays_for(str(attrs.get("schema_version", "0"))))
    exact = {"zarr.json", StoreFiles.MANIFEST, StoreFiles.CHECKSUMS, StoreFiles.BUILD_CONFIG, StoreFiles.BUILD_INPUTS}
    exact |= {f"{n}/zarr.json" for n in names}
    exact |= {StoreFiles.CALIBRATION_DELTAS, StoreFiles.CALIBRATION_TABLE, StoreFiles.CALIBRATION_RANGES}
    if dict(attrs.get("persistence", {})).get("full_diagrams"):
        exact |= {StoreFiles.full_diagrams_part(c) for c in range(g.num_chunks)}
    chunk_key = re.compile(rf"^(?:{'|'.join(re.escape(n) for n in names)})/c(?:/\d+)+$")
    return lambda rel: rel in exact or bool(chunk_key.match(rel)) or is_temporary(rel)


def size_budget(attrs: Mapping[str, Any]) -> int:
    """The most bytes a store with these attributes can reasonably hold on disk.

    The raw (uncompressed) size of every declared array, plus a per-sample allowance for the tables and a fixed
    one for metadata; with full diagrams, room for every pixel to be a pair in both dimensions. Compression only
    shrinks arrays, so a real store is well under it; a zip far over it holds something that is not the store.
    """
    g = Geometry.from_json(attrs["geometry"])
    raw = 0
    for spec in arrays_for(str(attrs.get("schema_version", "0"))).values():
        raw += math.prod(spec.shape(g)) * np.dtype(spec.dtype).itemsize
    full = 0
    if dict(attrs.get("persistence", {})).get("full_diagrams"):
        full = g.num_samples * g.height * g.width * 2 * 2 * 8  # (birth, death) float32 x H0 and H1, Parquet slack
    return int(raw * 1.05) + g.num_samples * PER_SAMPLE_ALLOWANCE + full + FIXED_ALLOWANCE
