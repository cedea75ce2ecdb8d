"""Store fingerprints: two stores with the same fingerprint were built from the same inputs the same way."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces, ASCII): the text that fingerprints are hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint(config: Mapping[str, Any], rows: Iterable[tuple[str, str | None, int, str]]) -> str:
    """Hash of the build configuration and the ordered ``(sample_id, input_sha256, label, split)`` rows.

    Library versions and chunk size are left out on purpose: they are provenance, not content.
    """
    h = hashlib.sha256()
    h.update(canonical_json(dict(config)).encode())
    for sample_id, sha, label, split in rows:
        h.update(f"\n{sample_id}\t{sha or '-'}\t{label}\t{split}".encode())
    return "sha256:" + h.hexdigest()
