"""What ``topo build-store`` takes, in a module light enough for the CLI to read its defaults without Ray."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topo.pipeline.roi.quality import DEFAULT_SUSPECT_POLICY
from topo.store_schema import DEFAULT_IMAGE_CODEC
from topo.store_schema.filtration import FiltrationSpec
from topo.store_schema.layout import DEFAULT_CHUNK_SIZE


class BuildError(Exception):
    """The build cannot go on (``--strict`` and a failed sample, or a misconfiguration)."""


@dataclass(frozen=True)
class RayResources:
    """What the job may use: ``address`` joins a cluster (``auto`` or ``HOST:PORT``); else a local Ray starts."""

    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None


@dataclass
class BuildConfig:
    """Everything ``topo build-store`` takes. Defaults are defined here and nowhere else."""

    dataset: str
    out: Path
    data_dir: str | None = None
    size: int = 28  # MedMNIST resolution to read
    download: bool = False
    split_seed: int = 0
    image_size: int | None = None  # store geometry; None = the dataset's native size, 224 for image files
    limit: int | None = None  # first N records only (quick trials)
    roi: str = "otsu"
    roi_params: dict[str, Any] = field(default_factory=dict)
    roi_suspect: str = DEFAULT_SUSPECT_POLICY  # auto | fallback | keep | fail (pipeline.roi.quality)
    filtration: FiltrationSpec = field(default_factory=FiltrationSpec)
    chunk_size: int = DEFAULT_CHUNK_SIZE
    jpeg_draft: bool = True  # decode large JPEGs DCT-downscaled (pipeline/decode.py; within DRAFT_TOLERANCE)
    image_codec: str = DEFAULT_IMAGE_CODEC  # a key of topo.store_schema.IMAGE_CODECS
    resources: RayResources = field(default_factory=RayResources)
    strict: bool = False
    overwrite: bool = False
    max_chunks: int | None = None  # stop after this many chunks (a resumable partial build)
    max_in_flight: int | None = None
    progress: bool = True
