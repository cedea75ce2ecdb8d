"""Checkpoints: plain dicts (config, store identity, step, states), saved atomically, loaded with weights_only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from topo.store_schema import Store


class CheckpointError(Exception):
    """A checkpoint cannot be used with this configuration or store."""


def store_identity(store: Store) -> dict[str, Any]:
    """What a checkpoint remembers of its store, to refuse an incompatible one later."""
    spec = store.persistence_spec
    return {
        "fingerprint": store.fingerprint,
        "schema_major": int(str(store.attrs["schema_version"]).split(".")[0]),
        "k0": int(spec["k0"]),
        "k1": int(spec["k1"]),
        "filtration": {k: spec.get(k) for k in ("direction", "input_type", "values", "outside_roi", "infinite_deaths")},
        "channels": store.geometry.channels,
    }


def check_store_compatible(saved: dict[str, Any], store: Store, *, same_data: bool) -> None:
    """Refuse a store that does not fit a checkpoint, naming both values.

    Schema major version, k0/k1, the filtration and the channel count must match; with ``same_data`` (resuming)
    the fingerprint too.
    """
    now = store_identity(store)
    keys = ["schema_major", "k0", "k1", "filtration", "channels"] + (["fingerprint"] if same_data else [])
    for k in keys:
        if saved.get(k) != now.get(k):
            raise CheckpointError(
                f"store {store.location} does not match the checkpoint: {k} is {now.get(k)!r} in the store "
                f"but {saved.get(k)!r} in the checkpoint"
            )


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (a plain dict) to ``path`` atomically: a temporary file, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: no pickle of objects)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p}")
    return torch.load(p, map_location="cpu", weights_only=True)


def backbone_state(method_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The online backbone's weights out of a method's state dict."""
    return {k.removeprefix("backbone."): v for k, v in method_state.items() if k.startswith("backbone.")}
