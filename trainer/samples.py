"""One store sample as a MONAI-style dict, and a loader transform for ``topo store export-datalist`` items.

:class:`~topo.trainer.data.StoreDataset` streams whole splits; MONAI users who keep their own datalist (the JSON
``topo store export-datalist`` writes) want a dict → dict transform in place of ``LoadImaged``::

    import json
    from monai.data import Dataset
    from monai.transforms import Compose, RandFlipd, RandRotate90d
    from topo.trainer.samples import LoadStoreSampled

    items = json.load(open("datalist.json"))["training"]
    ds = Dataset(items, transform=Compose([LoadStoreSampled(), RandFlipd(["image", "roi_mask"], prob=0.5),
                                           RandRotate90d(["image", "roi_mask"], prob=0.5)]))

Every item names its store and the store's fingerprint; a store rebuilt differently is refused rather than read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from topo.store_schema import Store, StoreFiles, open_store

SAMPLE_KEYS = ("image", "roi_mask", "label", "index", "sample_id", "pd_h0", "pd_h1", "n_h0", "n_h1")
ARRAY_FOR_KEY = {
    "image": "images",
    "roi_mask": "roi_masks",
    "label": "labels",
    "pd_h0": "pd_h0",
    "pd_h1": "pd_h1",
    "n_h0": "n_h0",
    "n_h1": "n_h1",
}


def sample_value(key: str, row: np.ndarray) -> Any:
    """One stored row as the sample format: image C×H×W and roi_mask 1×H×W tensors, diagrams k×2, ints.

    Always copies: a row is a view of a decoded chunk, which may be read-only (torch warns on every such array)
    and which the chunk's other samples still share.
    """
    if key == "image":
        return torch.from_numpy(np.array(row.transpose(2, 0, 1), order="C"))
    if key == "roi_mask":
        return torch.from_numpy(np.array(row[None], order="C"))  # channel-first like the image
    if key in ("pd_h0", "pd_h1"):
        return torch.from_numpy(np.array(row))
    return int(row)


class LoadStoreSampled:
    """A MONAI-style dict transform: a datalist item (``store``, ``index``, ``fingerprint``) → the store sample.

    Args:
        keys: the sample keys to read (default: all of :data:`SAMPLE_KEYS`).
        check_fingerprint: refuse an item whose fingerprint is not its store's.

    The item's own entries (``split`` and anything the user added) are kept; the sample's keys are added.
    Stores are opened once per process and kept.
    """

    def __init__(self, keys: Sequence[str] = SAMPLE_KEYS, *, check_fingerprint: bool = True) -> None:
        unknown = [k for k in keys if k not in SAMPLE_KEYS]
        if unknown:
            raise ValueError(f"unknown sample keys {unknown}; valid: {', '.join(SAMPLE_KEYS)}")
        self.keys, self.check_fingerprint = tuple(keys), check_fingerprint
        self._stores: dict[str, tuple[Store, Any]] = {}

    def _open(self, ref: str) -> tuple[Store, Any]:
        if ref not in self._stores:
            st = open_store(ref)
            st.validate()
            ids = st.read_table(StoreFiles.MANIFEST).column("sample_id") if "sample_id" in self.keys else None
            self._stores[ref] = (st, ids)
        return self._stores[ref]

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("store", "index") if k not in item]
        if missing:
            raise KeyError(f"datalist item lacks {missing}; write items with `topo store export-datalist`")
        st, ids = self._open(str(item["store"]))
        if self.check_fingerprint and item.get("fingerprint") not in (None, st.fingerprint):
            raise ValueError(
                f"item {item.get('sample_id', item['index'])} was listed from a store with fingerprint "
                f"{item['fingerprint']}, but {item['store']} now has {st.fingerprint}; export the datalist again"
            )
        idx = int(item["index"])
        out = dict(item)
        for key in self.keys:
            if key == "index":
                out[key] = idx
            elif key == "sample_id":
                out[key] = str(ids[idx])
            else:
                out[key] = sample_value(key, st.array(ARRAY_FOR_KEY[key])[idx])
        return out
