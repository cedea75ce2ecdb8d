"""Per-chunk checksums: recorded when a chunk is written, re-computed by ``topo store verify`` and the trainer.

A checksum covers the decoded content of one chunk of one array (dtype, shape and bytes in C order), so it does
not depend on the codec and reads the same from a directory, a packed file or a remote URL. The trainer's reader
checks each chunk on its first read in a process (:class:`ChunkSums`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from topo.store_schema.errors import ChunkChecksumError
from topo.store_schema.layout import StoreFiles

if TYPE_CHECKING:
    from topo.store_schema.store import Store


def block_digest(block: np.ndarray) -> str:
    a = np.ascontiguousarray(block)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


class ChunkSums:
    """A store's checksum table (``checksums.parquet``), to check chunks as a reader decodes them.

    Args:
        rows: the table's rows (``array``, ``chunk``, ``start``, ``stop``, ``sha256``).
        where: the store, for the messages.
    """

    def __init__(self, rows: list[dict], where: str) -> None:
        self.where = where
        self.sums = {
            (str(r["array"]), int(r["chunk"])): (int(r["start"]), int(r["stop"]), str(r["sha256"])) for r in rows
        }

    @classmethod
    def of(cls, store: Store) -> ChunkSums:
        return cls(store.read_table(StoreFiles.CHECKSUMS).to_pylist(), str(store.location))

    def check(self, name: str, chunk: int, block: np.ndarray) -> None:
        """Raise :class:`ChunkChecksumError` naming the array and chunk unless ``block`` is what was written."""
        entry = self.sums.get((name, chunk))
        if entry is None:
            raise ChunkChecksumError(
                f"{self.where}: array '{name}' chunk {chunk} has no entry in {StoreFiles.CHECKSUMS}; "
                "the store was altered (`topo store verify` lists every problem)"
            )
        start, stop, digest = entry
        if block_digest(block) != digest:
            raise ChunkChecksumError(
                f"{self.where}: array '{name}' chunk {chunk} (samples {start}–{stop - 1}) does not match its "
                f"checksum in {StoreFiles.CHECKSUMS}: the store was altered or damaged "
                "(`topo store verify` lists every problem; `topo train --no-verify-chunks` reads it anyway)"
            )
