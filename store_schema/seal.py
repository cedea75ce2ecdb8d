"""The root digest: one hash over everything a finished store *means*, recorded when its build finishes.

Chunk checksums catch a changed chunk, but not a changed manifest (labels, splits, status, sample ids), changed
attributes (``class_names``, ``split_names`` order, the filtration direction, the fingerprint), changed array
metadata (fill value, codecs) or a checksum recomputed after altering a chunk. The root digest covers all of them:
the canonical JSON of the topo attributes (without the digest itself and without ``calibration``, which
calibrate-aug adds later and ``topo store verify`` checks on its own), the bytes of every array's ``zarr.json``,
of the manifest and of the checksum table. Checking it reads a few small files, so every reader of a store can
afford it (:meth:`Store.problems` does); re-reading the chunks against the checksum table is ``topo store verify``.

It is a digest, not a signature: it detects edits by anyone who does not recompute it, which is every tool and
every mistake, not a deliberate forger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from topo.store_schema.fingerprint import canonical_json
from topo.store_schema.layout import StoreFiles, arrays_for
from topo.store_schema.location import Location

SEAL_KEY = "integrity"
UNSEALED_ATTRS = (SEAL_KEY, "calibration")
SEAL_PROBLEM = "root digest"  # how every problem sentence of this module starts


def root_digest(location: Location, attrs: Mapping[str, Any]) -> str:
    """The root digest of the store at ``location`` with topo attributes ``attrs``.

    Raises:
        FileNotFoundError: a covered member is missing.
    """
    h = hashlib.sha256()
    h.update(canonical_json({k: v for k, v in attrs.items() if k not in UNSEALED_ATTRS}).encode())
    keys = [f"{name}/zarr.json" for name in arrays_for(str(attrs.get("schema_version", "0")))]
    for key in (*keys, StoreFiles.MANIFEST, StoreFiles.CHECKSUMS):
        h.update(f"\n{key}\t".encode() + hashlib.sha256(location.read_bytes(key)).hexdigest().encode())
    return "sha256:" + h.hexdigest()


def seal(location: Location, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``integrity`` attribute to record with ``attrs`` once the manifest and checksum table are written."""
    return {"root_digest": root_digest(location, attrs), "covers": "attributes, array metadata, manifest, checksums"}


def seal_problem(location: Location, attrs: Mapping[str, Any]) -> str | None:
    """A sentence if the recorded root digest does not match the store (``None``: matches, or none recorded)."""
    recorded = (attrs.get(SEAL_KEY) or {}).get("root_digest")
    if recorded is None:
        return None
    try:
        now = root_digest(location, attrs)
    except FileNotFoundError as e:
        return f"root digest cannot be checked: {e}"
    if now != recorded:
        return (
            "root digest does not match: the manifest, the checksum table, the array metadata or the attributes "
            "(labels, splits, class or split names, filtration, fingerprint) were edited after the build finished"
        )
    return None
