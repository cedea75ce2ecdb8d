"""The store layout, declared once.

A store is a Zarr v3 group (a directory while it is built; a directory, a packed zip or a remote URL when read).

Per-sample arrays have the sample index as first axis and are chunked along it only, so one chunk holds
``chunk_size`` whole samples of every array; a build worker owns whole chunks. Tables are Parquet files beside the
arrays, named by :class:`StoreFiles`. Attributes live under the group's ``topo`` attribute as plain JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from zarr.codecs import BloscCodec

SCHEMA_VERSION = "1.1.0"
"""Semantic version of this layout. Readers refuse another major version. 1.1.0: manifest ``roi_quality``."""

ATTRS_KEY = "topo"
"""All of topo's attributes sit under this one key of the Zarr group's attributes."""

DEFAULT_CHUNK_SIZE = 64
DEFAULT_K0 = 48
DEFAULT_K1 = 96


class Status(enum.IntEnum):
    """Outcome of one sample's build, stored in the ``status`` array and (as its name) in the manifest."""

    OK = 0
    FALLBACK = 1  # ROI was empty or degenerate: the whole image was used
    FAILED = 2  # decode, ROI or persistence failed: arrays hold fill values, reason in the manifest
    UNWRITTEN = 255  # fill value: the chunk was never written

    @property
    def label(self) -> str:
        """The status as the manifest spells it (``ok``, ``fallback``, ``failed``, ``unwritten``)."""
        return self.name.lower()


@dataclass(frozen=True)
class Geometry:
    """Fixed per-store sizes that array shapes derive from."""

    num_samples: int
    height: int
    width: int
    channels: int
    k0: int = DEFAULT_K0
    k1: int = DEFAULT_K1
    chunk_size: int = DEFAULT_CHUNK_SIZE

    @property
    def num_chunks(self) -> int:
        """Number of chunks along the sample axis (the last one may be short)."""
        return -(-self.num_samples // self.chunk_size)

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """Sample index range ``[start, stop)`` of one chunk."""
        start = chunk * self.chunk_size
        return start, min(start + self.chunk_size, self.num_samples)

    def to_json(self) -> dict[str, int]:
        """The geometry as stored in the ``geometry`` attribute."""
        return {
            "num_samples": self.num_samples,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "k0": self.k0,
            "k1": self.k1,
            "chunk_size": self.chunk_size,
        }

    @classmethod
    def from_json(cls, d: dict) -> Geometry:
        """Read the ``geometry`` attribute back."""
        return cls(**{k: int(d[k]) for k in ("num_samples", "height", "width", "channels", "k0", "k1", "chunk_size")})


IMAGE_CODECS: dict[str, Callable[[], BloscCodec]] = {
    # Real scans are noisy and compress little whichever codec: lz4 decodes 2–3× faster than zstd (see the loader
    # benchmark) for a store about a fifth larger; zstd is the smaller choice for archiving or handing a store on.
    "lz4": lambda: BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),
    "zstd": lambda: BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
}
"""Codecs for the pixel arrays (images, ROI masks), chosen at build time. Readers take whatever a store declares."""

DEFAULT_IMAGE_CODEC = "lz4"


def _table_codec() -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")


@dataclass(frozen=True)
class ArraySpec:
    """One per-sample array: its dtype, its shape after the sample axis, its codec and fill value.

    ``table_codec`` is the codec of the non-pixel arrays; ``None`` marks a pixel array, which takes the image codec
    chosen at build time (:data:`IMAGE_CODECS`).
    """

    name: str
    dtype: str
    trailing_shape: Callable[[Geometry], tuple[int, ...]]
    table_codec: Callable[[], BloscCodec] | None
    fill_value: int | float
    doc: str
    since: str = "1.0.0"  # the schema version that introduced the array: stores of older versions lack it

    def codec(self, image_codec: str = DEFAULT_IMAGE_CODEC) -> BloscCodec:
        """The codec of this array: its table codec, or the named image codec for pixel arrays."""
        if self.table_codec is not None:
            return self.table_codec()
        if image_codec not in IMAGE_CODECS:
            raise ValueError(f"unknown image codec {image_codec!r}; valid: {', '.join(IMAGE_CODECS)}")
        return IMAGE_CODECS[image_codec]()

    def shape(self, g: Geometry) -> tuple[int, ...]:
        """The full array shape for a store of geometry ``g``."""
        return (g.num_samples, *self.trailing_shape(g))

    def chunks(self, g: Geometry) -> tuple[int, ...]:
        """The chunk shape: ``chunk_size`` whole samples."""
        return (g.chunk_size, *self.trailing_shape(g))

    def empty(self, n: int, g: Geometry) -> np.ndarray:
        """A block of ``n`` samples filled with the fill value, ready to be written into."""
        return np.full((n, *self.trailing_shape(g)), self.fill_value, dtype=self.dtype)


_ARRAY_LIST = [
    ArraySpec(
        "images",
        "uint8",
        lambda g: (g.height, g.width, g.channels),
        None,
        0,
        "decoded input image, resized to the store geometry, channels last",
    ),
    ArraySpec(
        "roi_masks",
        "uint8",
        lambda g: (g.height, g.width),
        None,
        0,
        "region of interest: 1 inside, 0 outside (all ones for roi=none and for fallbacks)",
    ),
    ArraySpec("labels", "int32", lambda g: (), _table_codec, -1, "class index into attrs dataset.class_names"),
    ArraySpec("splits", "uint8", lambda g: (), _table_codec, 255, "split index into attrs dataset.split_names"),
    ArraySpec("status", "uint8", lambda g: (), _table_codec, int(Status.UNWRITTEN), "topo.store_schema.Status"),
    ArraySpec(
        "pd_h0",
        "float32",
        lambda g: (g.k0, 2),
        _table_codec,
        0.0,
        "top-k0 H0 (birth, death) pairs by persistence, descending; rows past n_h0 are zero padding",
    ),
    ArraySpec(
        "pd_h1",
        "float32",
        lambda g: (g.k1, 2),
        _table_codec,
        0.0,
        "top-k1 H1 (birth, death) pairs by persistence, descending; rows past n_h1 are zero padding",
    ),
    ArraySpec("n_h0", "int16", lambda g: (), _table_codec, 0, "number of valid rows in pd_h0"),
    ArraySpec("n_h1", "int16", lambda g: (), _table_codec, 0, "number of valid rows in pd_h1"),
]

ARRAYS: dict[str, ArraySpec] = {a.name: a for a in _ARRAY_LIST}
"""Every per-sample array of schema v1, by name."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``"1.2.0"`` → ``(1, 2, 0)``, for comparing schema versions."""
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        raise ValueError(f"not a schema version (MAJOR.MINOR.PATCH): {version!r}") from None


def arrays_for(version: str) -> dict[str, ArraySpec]:
    """The arrays a store of schema ``version`` holds: those introduced at or before it.

    A minor version may add arrays; a reader of the newer minor opens an older store and treats the added arrays
    as absent (``since`` newer than the store), and a reader of the older minor simply never asks for them.
    """
    v = version_tuple(version)
    return {name: spec for name, spec in ARRAYS.items() if version_tuple(spec.since) <= v}


CHUNK_ARRAYS: tuple[str, ...] = tuple(ARRAYS)
"""The arrays a build worker writes for each chunk it owns."""


class StoreFiles:
    """Names of the non-array members of a store, relative to its root."""

    MANIFEST = "manifest.parquet"
    CHECKSUMS = "checksums.parquet"
    BUILD_DIR = "_build"
    BUILD_CONFIG = "_build/config.json"
    BUILD_INPUTS = "_build/inputs.json"  # the input listing a resumed build must match (names, sizes, mtimes)
    CHUNK_PARTS = "_build/chunks"
    FULL_DIAGRAMS_DIR = "full_diagrams"
    CALIBRATION_DIR = "calibration"
    CALIBRATION_DELTAS = "calibration/deltas.parquet"
    CALIBRATION_TABLE = "calibration/table.parquet"
    CALIBRATION_RANGES = "calibration/ranges.parquet"
    CALIBRATION_PARTS = "calibration/_parts"
    CALIBRATION_CONFIG = "calibration/_parts/config.json"

    @staticmethod
    def calibration_part(block: int) -> str:
        """δ rows of one finished calibration block; its presence marks the block done for a resumed run."""
        return f"{StoreFiles.CALIBRATION_PARTS}/block-{block:06d}.parquet"

    @staticmethod
    def chunk_part(chunk: int) -> str:
        """Manifest rows of one finished chunk; its presence marks the chunk complete."""
        return f"{StoreFiles.CHUNK_PARTS}/{chunk:07d}.parquet"

    @staticmethod
    def full_diagrams_part(chunk: int) -> str:
        """Every persistence pair of one chunk's samples (only with ``full_diagrams``), written by its worker."""
        return f"{StoreFiles.FULL_DIAGRAMS_DIR}/{chunk:07d}.parquet"

    @staticmethod
    def chunk_sums(chunk: int) -> str:
        """Checksums of one chunk's blocks, written just before its manifest part."""
        return f"{StoreFiles.CHUNK_PARTS}/{chunk:07d}.sums.parquet"
