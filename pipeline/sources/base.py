"""The source interface: a dataset reader yields sample records, then the raw payload of each, in order.

Records are small (id, reference, label, split) and all of them are listed up front, so splits, duplicates and
label ranges can be checked before any pixel is read. Payloads (an array or the encoded file's bytes) are read
lazily, chunk by chunk, by the build driver and decoded on the workers (:mod:`topo.pipeline.decode`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ReadFailure:
    """A payload that could not be read at all; the sample is recorded as failed with this reason."""

    reason: str


Payload = np.ndarray | bytes | ReadFailure
SPLITS: tuple[str, ...] = ("train", "val", "test")


class SourceError(Exception):
    """The dataset cannot be read as asked (missing files, unknown name, bad option)."""


@dataclass(frozen=True)
class SampleRecord:
    """One sample before decoding. ``sample_id`` is stable across builds of the same data."""

    sample_id: str
    source_ref: str
    label: int
    split: str
    problem: str | None = None  # known before reading (a bad listing row): the sample fails with this reason


@dataclass(frozen=True)
class SourceInfo:
    """What a store records about its dataset."""

    name: str
    class_names: tuple[str, ...]
    license: str
    channels: int
    image_size: int | None  # native square size when every image has it (MedMNIST), else None
    split_names: tuple[str, ...] = SPLITS
    description: str = ""
    split_policy: str = "official"
    extra: dict[str, Any] = field(default_factory=dict)
    non_commercial: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "split_names": list(self.split_names),
            "license": self.license,
            "non_commercial": self.non_commercial,
            "channels": self.channels,
            "description": self.description,
            "split_policy": self.split_policy,
            **({"extra": self.extra} if self.extra else {}),
        }


class Source(ABC):
    """A dataset reader. Subclasses implement :meth:`info`, :meth:`records` and :meth:`payloads`."""

    @abstractmethod
    def info(self) -> SourceInfo: ...

    @abstractmethod
    def records(self) -> list[SampleRecord]: ...

    @abstractmethod
    def payloads(self, records: Sequence[SampleRecord]) -> Iterator[Payload]:
        """Raw payloads of ``records``, in order. Reading is cheap; decoding happens on the workers."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing open
        """Release open files."""

    def content_options(self) -> dict[str, Any]:
        """Options that change what the source yields, for the store's build config and fingerprint."""
        return {}

    def warnings(self) -> list[str]:
        """Things the listing skipped or could not use that do not fail a sample (printed by the build)."""
        return []

    def input_files(self, records: Sequence[SampleRecord]) -> list[Path | None]:
        """The file each record is read from (``None`` where there is none), for the resume input check."""
        return [None] * len(records)


def stratified_split(
    labels: Sequence[int], *, val: float, test: float, seed: int, groups: Sequence[str] | None = None
) -> list[str]:
    """Seeded split into train/val/test, stratified by label (and never splitting a group when given).

    With ``groups`` (e.g. ISIC lesion ids) whole groups go to one side, via scikit-learn's
    ``StratifiedGroupKFold``; the fractions are then approximate.
    """
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

    y = np.asarray(labels)
    idx = np.arange(len(y))
    out = np.full(len(y), "train", dtype=object)

    def carve(pool: np.ndarray, frac: float, name: str) -> None:
        if frac <= 0 or len(pool) == 0:
            return
        if groups is None:
            # Stratify only where scikit-learn can: every class twice, and both sides at least one per class
            # (it holds out ceil(frac * n)); a tiny dataset gets a plain seeded split instead of an error.
            _, counts = np.unique(y[pool], return_counts=True)
            n_held = math.ceil(frac * len(pool))
            can = counts.min() >= 2 and min(n_held, len(pool) - n_held) >= len(counts)
            if len(pool) - n_held < 1:
                return
            _, held = train_test_split(pool, test_size=n_held, random_state=seed, stratify=y[pool] if can else None)
        else:
            n_splits = max(2, round(1 / frac))
            g = np.asarray(groups)[pool]
            if len(np.unique(g)) < 2:
                return
            _, counts = np.unique(y[pool], return_counts=True)
            if counts.max() >= n_splits:
                kf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                _, held_pos = next(kf.split(pool, y[pool], g))
            else:
                # Too few images per class for stratified folds (scikit-learn refuses): keep groups whole, unstratified.
                gss = GroupShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
                _, held_pos = next(gss.split(pool, y[pool], g))
            held = pool[held_pos]
        out[held] = name

    carve(idx, test, "test")
    carve(idx[out == "train"], val / max(1e-9, 1 - test), "val")
    return [str(s) for s in out]
