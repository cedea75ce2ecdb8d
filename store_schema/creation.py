"""Creating a store atomically, and recognising what ``--overwrite`` may delete.

A store is built in a hidden sibling folder (``.<name>.creating``) and renamed to its name only once its arrays,
attributes and build config are all written, so a build killed at any moment leaves either no store (plus a
leftover temp folder that the next run removes) or a store whose build config exists and resumes. Stores made
before this rule could be left with a root ``zarr.json`` but no build config (a kill between the two writes):
such a store holds no computed chunk yet, so it is recreated rather than refused.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zarr

from topo.store_schema.errors import StoreError
from topo.store_schema.layout import ARRAYS, ATTRS_KEY, DEFAULT_IMAGE_CODEC, SCHEMA_VERSION, Geometry, StoreFiles
from topo.store_schema.store import Store, open_store, write_bytes_atomic


def creating_path(root: Path) -> Path:
    """The hidden sibling a store is built in before it is renamed into place."""
    return root.with_name(f".{root.name}.creating")


def _topo_attrs(root: Path) -> dict[str, Any] | None:
    """The topo attributes of the root ``zarr.json``, or ``None`` if there are none (or it is unreadable)."""
    try:
        meta = json.loads((root / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    raw = attrs.get(ATTRS_KEY) if isinstance(attrs, dict) else None
    return raw if isinstance(raw, dict) else None


def removable_reason(root: Path) -> str | None:
    """Why ``--overwrite`` may delete ``root`` (``None``: it must not, it is not recognisably ours)."""
    if not root.exists():
        return "absent"
    if root.is_symlink() or not root.is_dir():
        return None
    if not any(root.iterdir()):
        return "an empty folder"
    if (root / StoreFiles.BUILD_CONFIG).is_file():
        return "a store made by build-store"
    if _topo_attrs(root) is not None:
        return "a topo store"
    return None


def remove_store(root: str | os.PathLike[str]) -> None:
    """Delete a store for ``--overwrite``, refusing anything that is not recognisably a topo store or empty."""
    p = Path(root)
    shutil.rmtree(creating_path(p), ignore_errors=True)
    why = removable_reason(p)
    if p.is_symlink():
        raise StoreError(f"{p} is a symbolic link; --overwrite deletes only a real store folder (give its real path)")
    if why is None:
        raise StoreError(f"{p} is not a topo store (nor an empty or partial one); refusing to delete it")
    if why != "absent":
        shutil.rmtree(p)


def _check_resumable(root: Path, cfg_json: dict[str, Any]) -> bool:
    """Whether the store at ``root`` resumes with ``cfg_json`` (``False``: an interrupted creation, recreate)."""
    cfg_path = root / StoreFiles.BUILD_CONFIG
    if not cfg_path.exists():
        attrs = _topo_attrs(root)
        if attrs is not None and not attrs.get("build", {}).get("complete", False):
            return False  # killed between zarr.json and the build config: no chunk was computed yet
        raise StoreError(f"{root} exists and was not made by build-store; choose another --out or remove it")
    try:
        old = json.loads(cfg_path.read_text())
    except ValueError as e:
        raise StoreError(f"{cfg_path} is unreadable ({e}); use --overwrite to rebuild the store") from e
    if old != cfg_json:
        diff = sorted(k for k in set(old) | set(cfg_json) if old.get(k) != cfg_json.get(k))
        raise StoreError(
            f"{root} was built with another configuration (differs in: {', '.join(diff)}); "
            "use --overwrite to rebuild it or choose another --out"
        )
    return True


def create_store(
    path: str | os.PathLike[str],
    geometry: Geometry,
    attrs: Mapping[str, Any],
    *,
    build_config: Mapping[str, Any],
    image_codec: str = DEFAULT_IMAGE_CODEC,
) -> Store:
    """Create an empty store (arrays, attributes, build config), or reopen one whose build used the same config.

    The build config is everything that determines the store's content (and how it is laid out: chunk size, image
    codec); a second build with the same config resumes, one with another config is refused. Creation is atomic
    (see the module docstring); callers hold the store's writer lock, so the temp folder has one writer.
    """
    root = Path(path)
    cfg_json = json.loads(json.dumps(dict(build_config)))
    if (root / "zarr.json").exists():
        if _check_resumable(root, cfg_json):
            return open_store(root, mode="r+")
        shutil.rmtree(root)
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise StoreError(f"{root} exists and is not empty; choose another --out")
    tmp = creating_path(root)
    shutil.rmtree(tmp, ignore_errors=True)  # left by a build killed while creating
    _write_new(tmp, geometry, attrs, cfg_json, image_codec)
    if root.exists():
        root.rmdir()  # an empty folder (checked above); rename cannot replace it on every platform
    os.replace(tmp, root)
    return open_store(root, mode="r+")


def _write_new(
    tmp: Path, geometry: Geometry, attrs: Mapping[str, Any], cfg_json: dict[str, Any], image_codec: str
) -> None:
    group = zarr.open_group(zarr.storage.LocalStore(str(tmp)), mode="w")
    for spec in ARRAYS.values():
        group.create_array(
            spec.name,
            shape=spec.shape(geometry),
            chunks=spec.chunks(geometry),
            dtype=spec.dtype,
            compressors=[spec.codec(image_codec)],
            fill_value=spec.fill_value,
        )
    full = {
        "schema_version": SCHEMA_VERSION,
        "geometry": geometry.to_json(),
        "build": {"complete": False, "num_chunks": geometry.num_chunks},
        **dict(attrs),
    }
    group.attrs.update({ATTRS_KEY: json.loads(json.dumps(full))})
    write_bytes_atomic(tmp / StoreFiles.BUILD_CONFIG, json.dumps(cfg_json, indent=2, sort_keys=True).encode())
