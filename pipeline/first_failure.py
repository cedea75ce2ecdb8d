"""``--strict``: the first failed sample in index order, whatever order the chunks finish in.

Chunks finish in whatever order Ray runs them, so "the first failure collected" depends on timing. The driver
offers every failure it sees here (with its chunk and sample index) and keeps waiting for the chunks *before* the
lowest failing one: only when none of those is still running is the lowest failure known to be the first. Chunks
after it no longer matter and are cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from topo.store_schema import StoreFiles


@dataclass(frozen=True, order=True)
class Failure:
    """One failed sample: ordered by sample index (chunks hold consecutive samples)."""

    index: int
    chunk: int
    sample_id: str
    reason: str

    def message(self) -> str:
        return (
            f"--strict: sample {self.sample_id} failed: {self.reason} "
            f"(index {self.index}, the first failure in index order; re-run without --strict to go on)"
        )


class FirstFailure:
    """The lowest-index failure offered so far."""

    def __init__(self) -> None:
        self.best: Failure | None = None

    def offer(self, failure: Failure | None) -> None:
        if failure is not None and (self.best is None or failure < self.best):
            self.best = failure

    def matters(self, chunk: int) -> bool:
        """Whether a chunk can still hold an earlier failure than the best one known."""
        return self.best is None or chunk < self.best.chunk


def recorded_failure(store_root: Path, chunk: int) -> Failure | None:
    """The first failed sample of a chunk finished by an earlier run (from its completion record).

    A resumed ``--strict`` build skips finished chunks; without this, a failure that stopped the previous run
    would be skipped over and the build would go on as if it had never failed.
    """
    part = pq.read_table(store_root / StoreFiles.chunk_part(chunk), columns=["index", "sample_id", "status", "reason"])
    for row in part.to_pylist():
        if row["status"] == "failed":
            return Failure(int(row["index"]), chunk, str(row["sample_id"]), str(row["reason"] or ""))
    return None
