"""Reading a store's augmentation calibration: the calibrated intensity ranges and how they were made.

The calibration job (:mod:`topo.pipeline.calibrate`) writes its results into the store's ``calibration``
attribute; consumers (the trainer) read them here, without importing the pipeline or Ray.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from topo.store_schema.errors import StoreError
from topo.store_schema.store import Store, open_store

Ranges = dict[str, dict[str, tuple[float, float] | None]]
"""``{combination_name: {band: (lo, hi) | None}}``: the calibrated intensity range of each band."""


def _as_store(store: Store | str | os.PathLike[str]) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def calibrate_hint(store: Store | str | os.PathLike[str], *, full_image: bool = False, grid: int | None = None) -> str:
    """The ``topo calibrate-aug`` command that (re)calibrates ``store``, backticked and ready to paste.

    Every message that tells a person to calibrate comes from here, so none can drift from the command's real
    options: the store is named with ``--store`` (quoted for a shell, absolute for a directory, so the command
    works from any folder), and ``--overwrite`` is added when the store already holds a calibration (the command
    refuses to replace one of another configuration without it).

    Args:
        store: an open store, or its path/URL.
        full_image: ask for δ on whole images (``--full-image``).
        grid: ask for this many intensities (``--grid N``; more than the default reaches bands it missed).
    """
    st = _as_store(store)
    where = os.path.abspath(st.location.path) if st.location.kind == "dir" else str(st.location)
    cmd = ["topo", "calibrate-aug"]
    if full_image:
        cmd.append("--full-image")
    if grid is not None:
        cmd += ["--grid", str(grid)]
    cmd += ["--store", where]
    if st.attrs.get("calibration"):
        cmd.append("--overwrite")
    return f"`{shlex.join(cmd)}`"


def calibration_attrs(store: Store | str | os.PathLike[str]) -> dict[str, Any]:
    """The store's ``calibration`` attribute (configuration, bands, grid, ranges, ``full_image``…).

    Raises:
        StoreError: the store has not been calibrated.
    """
    st = _as_store(store)
    cal = st.attrs.get("calibration")
    if not isinstance(cal, dict) or "ranges" not in cal:
        raise StoreError(f"{st.location} has no calibration; run {calibrate_hint(st)} first")
    return cal


def ranges_from_json(ranges: Mapping[str, Any]) -> Ranges:
    """Ranges as stored (JSON lists, with ``reasons``/``notes`` beside the bands) → tuples per band."""
    out: Ranges = {}
    for name, entry in ranges.items():
        out[name] = {
            band: (None if v is None else (float(v[0]), float(v[1])))
            for band, v in entry.items()
            if band not in ("reasons", "notes")
        }
    return out


def load_ranges(store: Store | str | os.PathLike[str]) -> Ranges:
    """The calibrated s-ranges from the store's attributes (no Parquet needed), for the trainer.

    Args:
        store: an open :class:`~topo.store_schema.Store` or its path/URL.

    Returns:
        ``{combination_name: {"weak": (lo, hi) | None, "strong": (lo, hi) | None}}`` (one key per band);
        ``None`` where the combination cannot reach the band. Names are ``+``-joined operator names, which
        :func:`topo.pipeline.augment.parse_combination` turns back into tuples.

    Raises:
        StoreError: the store has not been calibrated.
    """
    return ranges_from_json(calibration_attrs(store)["ranges"])


def calibrated_on_full_image(store: Store | str | os.PathLike[str]) -> bool:
    """Whether δ was measured on whole images (``calibrate-aug --full-image``) rather than on the ROI."""
    return bool(calibration_attrs(store).get("full_image", False))
