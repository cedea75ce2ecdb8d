"""What a SAM build records: every setting that changes the masks, and the checkpoint by content.

Kept apart from ``sam.py`` so that the registry can describe SAM without importing torch until a build asks.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from topo.pipeline.roi.registry import RoiSpec

# Settings that change where or how fast SAM runs, not the masks it returns.
_NOT_CONTENT = ("self", "checkpoint", "device", "batch_size")


def sam_spec(params: dict[str, Any]) -> RoiSpec:
    """SAM's build record: its defaults too (they are part of what the store means).

    The checkpoint is recorded by its digests, so a renamed file still resumes and fingerprints the same.
    """
    from topo.pipeline.roi.sam import OFFICIAL_CHECKPOINTS, SamRoi, resolve_checkpoint

    ckpt = resolve_checkpoint(params.get("model", "vit_h"), params.get("checkpoint"))
    params = {**params, "checkpoint": ckpt["path"]}
    signature = inspect.signature(SamRoi.__init__).parameters.items()
    defaults = {k: p.default for k, p in signature if k not in _NOT_CONTENT}
    recorded = {**defaults, **{k: v for k, v in params.items() if k not in _NOT_CONTENT}}
    digests = {k: ckpt[k] for k in ("md5", "sha256")}
    record = {"backend": "sam", "params": recorded, "checkpoint": digests}
    name = Path(ckpt["path"]).name
    attrs = {**record, "checkpoint": {"file": name, "official": name in OFFICIAL_CHECKPOINTS, **digests}}
    return params, record, attrs
