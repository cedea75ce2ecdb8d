"""Provenance of a store: versions of the tools that made it and the time, recorded in its attributes."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata

_PACKAGES = ("topo", "gudhi", "numpy", "zarr", "pyarrow", "ray", "torch", "segment-anything", "scikit-image")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape a store's content."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
