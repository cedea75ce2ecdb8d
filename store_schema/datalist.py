"""A MONAI-style datalist of a store's samples: ``topo store export-datalist``.

MONAI users describe data as a JSON file of dicts grouped by split (the Medical Segmentation Decathlon
layout read by ``monai.data.load_decathlon_datalist``)::

    {"name": ..., "labels": {"0": "malignant", ...}, "numTraining": 546, ...,
     "training": [{"index": 0, "sample_id": "breastmnist/train/000000", "label": 1, "split": "train",
                   "store": "/data/demo.zarr", "fingerprint": "sha256:..."}, ...],
     "validation": [...], "test": [...]}

Each item points into the store by ``index`` and carries the store's fingerprint, so a loader can refuse
to read a store that was rebuilt differently (the stale-cache problem of MONAI's persistent caches). The
store's own split names map to MONAI's keys: ``train`` -> ``training``, ``val`` -> ``validation``,
``test`` -> ``test``; any other split keeps its name.

To load the items in a MONAI pipeline, ``topo.trainer.samples.LoadStoreSampled`` takes the place of ``LoadImaged``:
it reads each item's sample from its store (image ``C×H×W``, ``roi_mask`` ``1×H×W``) and refuses a stale
fingerprint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from topo.store_schema.layout import Status
from topo.store_schema.location import Location
from topo.store_schema.store import Store, open_store, write_bytes_atomic

MONAI_SPLIT_KEYS: dict[str, str] = {"train": "training", "val": "validation", "test": "test"}
"""topo split name -> MONAI datalist key."""

_COUNT_KEYS = {"training": "numTraining", "validation": "numValidation", "test": "numTest"}


def _store_ref(st: Store) -> str:
    loc = st.location
    # A local path is written absolute: a relative one would be resolved against the JSON's folder by MONAI.
    return loc.path if loc.kind == "url" else str(Path(loc.path).resolve())


def export_datalist(
    store: Store | str | os.PathLike[str] | Location,
    out_json: str | os.PathLike[str],
    splits: Sequence[str] | None = None,
    *,
    usable_only: bool = True,
    store_ref: str | None = None,
) -> dict[str, Any]:
    """Write a MONAI-style datalist of the store's samples, grouped by split.

    Args:
        store: a finished store, or its path or URL.
        out_json: the JSON file to write (replaced atomically).
        splits: the store splits to export (e.g. ``["train", "val"]``); ``None`` exports all of them.
        usable_only: leave out failed samples (they have no image or diagram).
        store_ref: what to write as each item's ``"store"`` (e.g. the URL the other team reads from);
            default: the store's absolute path, or its URL.

    Returns:
        The datalist written.

    Raises:
        ValueError: a split name the store does not have.
        StoreIncompleteError: the store's build has not finished.
    """
    st = store if isinstance(store, Store) else open_store(store)
    names = st.split_names
    wanted = list(names) if splits is None else list(splits)
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; this store has {names}")
    m = st.manifest().select(["index", "sample_id", "label", "split", "status"]).to_pylist()
    ref = store_ref or _store_ref(st)
    fp = st.fingerprint
    ds = st.attrs.get("dataset", {})
    groups: dict[str, list[dict[str, Any]]] = {MONAI_SPLIT_KEYS.get(s, s): [] for s in wanted}
    for row in m:
        if row["split"] not in wanted:
            continue
        if usable_only and row["status"] == Status.FAILED.label:
            continue
        groups[MONAI_SPLIT_KEYS.get(row["split"], row["split"])].append(
            {
                "index": int(row["index"]),
                "sample_id": row["sample_id"],
                "label": int(row["label"]),
                "split": row["split"],
                "store": ref,
                "fingerprint": fp,
            }
        )
    doc: dict[str, Any] = {
        "name": ds.get("name"),
        "description": ds.get("description", ""),
        "licence": ds.get("license"),
        "labels": {str(i): c for i, c in enumerate(st.class_names)},
        "store": ref,
        "fingerprint": fp,
        "schema_version": st.attrs.get("schema_version"),
    }
    doc.update({_COUNT_KEYS[k]: len(v) for k, v in groups.items() if k in _COUNT_KEYS})
    doc.update(groups)
    write_bytes_atomic(Path(out_json), (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode())
    return doc
