"""``--roi`` and its parameters: help from the ROI registry, ``--roi-param KEY=VALUE`` for any backend."""

from __future__ import annotations

import json
from typing import Any


def parse_roi_params(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value is read as JSON where it parses (numbers, booleans), else kept as text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--roi-param {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def sam_params(model: str, checkpoint: str | None, mode: str, points_per_side: int) -> dict[str, Any]:
    """The ``--sam-*`` options as SAM's constructor parameters."""
    params: dict[str, Any] = {"model": model, "checkpoint": checkpoint, "mode": mode}
    if mode == "auto":
        params["points_per_side"] = points_per_side
    return params
