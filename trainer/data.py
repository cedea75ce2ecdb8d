"""Streaming a store into training: block shuffle, sharding over ranks and workers, mid-epoch resume.

**Order.** For each epoch the selected sample indices are grouped by store chunk, the chunks are put in a seeded
random order, and samples are shuffled inside windows of ``shuffle_window`` consecutive chunks (a shuffle buffer
that spans several chunks, written as a pure function of ``(seed, epoch)`` so it can be replayed).

**Sharding.** Rank ``r`` of ``W`` takes a contiguous slice of that order (chunk locality), cut into batches; with
``drop_last=True`` (training) every rank gets the same number of full batches and the at most ``W·B − 1`` samples
left over differ from epoch to epoch; with ``drop_last=False`` (evaluation) every sample is served exactly once and
ranks may differ by one batch. DataLoader worker ``w`` of ``K`` produces batches ``w, w + K, …`` of its rank, which
is exactly the order in which the DataLoader hands them out, so the stream is identical for any number of workers.

**Resume.** ``state_dict()`` is ``{epoch, batches_done}``; a dataset loaded from it skips the batches already
consumed, so a resumed run sees the same samples in the same order as an uninterrupted one.

**Checked.** With ``verify_chunks`` (the default) every chunk is compared with the store's checksum table
(``checksums.parquet``, what ``topo store verify`` re-reads) the first time this process reads it, in the reading
threads: a chunk altered, lost (Zarr reads a missing chunk file as fill values) or recomputed without its
checksum raises :class:`~topo.store_schema.errors.ChunkChecksumError` naming the array and the chunk. Chunks
already checked are not hashed again in the same process (DataLoader workers are new processes each epoch, so
they check what they read every epoch).

**Spawn-safe.** The store is opened lazily inside each worker process (Zarr runs an asyncio loop that does not
survive a fork); :func:`make_loader` uses the ``spawn`` start method. The dataset never writes to the store.

Samples are MONAI-style dicts with fixed-shape values that the default collate handles: ``image`` (C×H×W
uint8), ``roi_mask`` (1×H×W uint8: channel-first like the image, so MONAI's spatial dictionary transforms such as
``RandFlipd``/``RandRotate90d``/``RandAffined`` move image and mask together; the store array stays N×H×W),
``label``, ``index``, ``sample_id``, ``pd_h0`` (k0×2), ``pd_h1`` (k1×2), ``n_h0``, ``n_h1``. ``transform`` may be
any dict → dict callable (MONAI dictionary transforms included); :mod:`topo.trainer.samples` loads the items of an
exported datalist the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from topo.store_schema import Store, StoreFiles, open_store
from topo.store_schema.integrity import ChunkSums
from topo.trainer.samples import ARRAY_FOR_KEY, SAMPLE_KEYS, sample_value

__all__ = ["SAMPLE_KEYS", "StoreDataset", "epoch_order", "make_loader", "rank_batches"]

_ARRAY_FOR_KEY = ARRAY_FOR_KEY


def epoch_order(
    indices: np.ndarray, *, chunk_size: int, seed: int, epoch: int, shuffle: bool = True, shuffle_window: int = 4
) -> np.ndarray:
    """The epoch's global sample order: chunks in random order, samples shuffled within windows of chunks."""
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    if not shuffle:
        return indices
    rng = np.random.default_rng([seed, epoch])
    chunks = indices // chunk_size
    uniq = np.unique(chunks)
    order = rng.permutation(uniq)
    by_chunk = {c: indices[chunks == c] for c in uniq}
    out = []
    for w in range(0, len(order), max(1, shuffle_window)):
        block = np.concatenate([by_chunk[c] for c in order[w : w + shuffle_window]])
        out.append(rng.permutation(block))
    return np.concatenate(out) if out else indices


def rank_batches(
    order: np.ndarray, *, rank: int, world_size: int, batch_size: int, drop_last: bool
) -> list[np.ndarray]:
    """The batches of one rank (see the module docstring for the rules)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")
    n = len(order)
    if drop_last:
        per_rank = (n // world_size) // batch_size * batch_size
        mine = order[rank * per_rank : (rank + 1) * per_rank]
    else:
        bounds = np.linspace(0, n, world_size + 1).round().astype(int)
        mine = order[bounds[rank] : bounds[rank + 1]]
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]


class StoreDataset(IterableDataset):
    """An iterable over one or more splits of a store. See the module docstring for order, sharding and resume.

    Args:
        store: path or URL of the store.
        splits: split name(s) to read.
        batch_size: samples per batch (the unit of sharding and resume; give the same value to the DataLoader).
        seed: shuffle seed. shuffle: shuffle or keep index order. shuffle_window: chunks per shuffle window.
        drop_last: equal full batches on every rank (training) or every sample exactly once (evaluation).
        rank, world_size: default to the process group's, or 0 and 1 without one.
        transform: a dict → dict callable applied to each sample in the worker.
        keys: the sample keys to read (others are not decoded).
        expect_fingerprint: refuse a store whose fingerprint differs (a checkpoint's store, say).
        collate: yield whole collated batches (what ``default_collate`` would make of the samples) instead of
            samples; without a transform they are read with one vectorised copy per chunk, several times faster,
            and the DataLoader then moves one tensor per batch between processes. Collated images are N×C×H×W
            views of the stored channels-last rows (``torch.channels_last`` memory format), not copies.
        readahead: chunks read ahead of the batch being served, per process (0: read on first use).
        read_threads: threads reading ahead, per process (chunk decoding releases the GIL).
        verify_chunks: check each chunk against the store's checksum table on its first read in this process
            (see the module docstring); ``False`` reads without checking.
    """

    def __init__(
        self,
        store: str,
        *,
        splits: str | Sequence[str] = "train",
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_window: int = 4,
        drop_last: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        keys: Sequence[str] = SAMPLE_KEYS,
        expect_fingerprint: str | None = None,
        collate: bool = False,
        readahead: int = 8,
        read_threads: int = 2,
        verify_chunks: bool = True,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if readahead < 0 or read_threads < 0:
            raise ValueError(f"readahead and read_threads must be >= 0, got {readahead} and {read_threads}")
        unknown = [k for k in keys if k not in SAMPLE_KEYS]
        if unknown:
            raise ValueError(f"unknown sample keys {unknown}; valid: {', '.join(SAMPLE_KEYS)}")
        from topo.trainer.dist import get_rank, get_world_size

        self.store_path = str(store)
        self.splits = [splits] if isinstance(splits, str) else list(splits)
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.shuffle_window, self.drop_last = shuffle_window, drop_last
        self.rank = get_rank() if rank is None else rank
        self.world_size = get_world_size() if world_size is None else world_size
        self.transform, self.keys, self.collate = transform, tuple(keys), collate
        self.readahead, self.read_threads = readahead, read_threads
        self.verify_chunks = verify_chunks
        self._sums: ChunkSums | None = None  # read per process, with the store
        self._verified: set[tuple[str, int]] = set()  # (array, chunk) already checked in this process
        st = open_store(self.store_path)
        st.validate()
        if expect_fingerprint is not None and st.fingerprint != expect_fingerprint:
            raise ValueError(f"store {self.store_path} has fingerprint {st.fingerprint}, expected {expect_fingerprint}")
        self.fingerprint = st.fingerprint
        self.geometry = st.geometry
        self.class_names = st.class_names
        self.indices = st.indices(self.splits)
        if len(self.indices) == 0:
            raise ValueError(f"store {self.store_path} has no usable samples in split(s) {self.splits}")
        self.epoch, self._skip = 0, 0
        self._store: Store | None = None  # opened per worker process

    # --- state ------------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._skip = epoch, 0

    def state_dict(self, batches_done: int) -> dict[str, int]:
        """Position after ``batches_done`` batches of the current epoch (the loop counts what it consumed)."""
        return {"epoch": self.epoch, "batches_done": batches_done, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"loader state was saved with seed {state['seed']}, this dataset has seed {self.seed}")
        self.epoch, self._skip = int(state["epoch"]), int(state["batches_done"])

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """The batches of sample indices this rank reads in an epoch."""
        order = epoch_order(
            self.indices,
            chunk_size=self.geometry.chunk_size,
            seed=self.seed,
            epoch=self.epoch if epoch is None else epoch,
            shuffle=self.shuffle,
            shuffle_window=self.shuffle_window,
        )
        return rank_batches(
            order, rank=self.rank, world_size=self.world_size, batch_size=self.batch_size, drop_last=self.drop_last
        )

    def num_batches(self) -> int:
        """Number of batches this rank reads per epoch (the optimiser steps of a training epoch)."""
        return len(self.batches(0))

    def __len__(self) -> int:
        """Number of items this rank yields per epoch: batches with ``collate=True``, samples otherwise.

        A DataLoader batching the samples itself takes ``len(dataset)`` as a sample count, so the two modes must
        differ (for progress bars and schedules use :meth:`num_batches`).
        """
        batches = self.batches(0)
        return len(batches) if self.collate else sum(len(b) for b in batches)

    # --- reading ----------------------------------------------------------------------------------------------
    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        if self._store is None:
            self._store = open_store(self.store_path)
            self._ids = self._sample_ids() if "sample_id" in self.keys else None
            self._sums = ChunkSums.of(self._store) if self.verify_chunks else None
        if hasattr(self.transform, "set_epoch"):
            self.transform.set_epoch(self.epoch)  # type: ignore[union-attr]
        batches = self.batches()
        mine = [batches[b] for b in range(self._skip + wid, len(batches), nw)]
        names = [_ARRAY_FOR_KEY[k] for k in self.keys if k in _ARRAY_FOR_KEY]
        reader = _ChunkReader(
            {n: self._store.array(n) for n in names},
            self.geometry.chunk_size,
            mine,
            readahead=self.readahead,
            threads=self.read_threads,
            sums=self._sums,
            verified=self._verified,
        )
        try:
            for b, idxs in enumerate(mine):
                reader.advance(b)
                if self.collate:
                    yield self._batch(reader, idxs)
                else:
                    for idx in idxs:
                        sample = self._sample(reader, int(idx))
                        yield self.transform(sample) if self.transform else sample
                reader.release(b)
        finally:
            reader.close()

    def _batch(self, reader: _ChunkReader, idxs: np.ndarray) -> dict[str, Any]:
        """One collated batch, equal to ``default_collate`` of the samples, read without per-sample Python."""
        if self.transform is not None:
            return default_collate([self.transform(self._sample(reader, int(i))) for i in idxs])
        out: dict[str, Any] = {}
        for key in self.keys:
            if key == "index":
                out[key] = torch.from_numpy(idxs.astype(np.int64))
            elif key == "sample_id":
                out[key] = [str(s) for s in self._ids[idxs]]  # type: ignore[index]
            else:
                v = reader.gather(_ARRAY_FOR_KEY[key], idxs)
                if key == "image":
                    # N×C×H×W over the channels-last rows, not a copy: what torch calls channels_last memory format,
                    # the layout convolutions prefer under mixed precision anyway.
                    out[key] = torch.from_numpy(v).permute(0, 3, 1, 2)
                elif key == "roi_mask":
                    out[key] = torch.from_numpy(v)[:, None]  # N×1×H×W: channel-first like the image
                elif key in ("pd_h0", "pd_h1"):
                    out[key] = torch.from_numpy(v)
                else:
                    out[key] = torch.from_numpy(v.astype(np.int64))
        return out

    def _sample_ids(self) -> np.ndarray:
        assert self._store is not None
        return np.asarray(self._store.read_table(StoreFiles.MANIFEST).column("sample_id").to_pylist(), dtype=object)

    def _sample(self, reader: _ChunkReader, idx: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.keys:
            if key == "index":
                out[key] = idx
            elif key == "sample_id":
                out[key] = str(self._ids[idx])  # type: ignore[index]
            else:
                out[key] = sample_value(key, reader.row(_ARRAY_FOR_KEY[key], idx))
        return out


class _ChunkReader:
    """The chunks a known sequence of batches needs, read ahead on a thread pool and dropped after their last use.

    An epoch's batches are fixed before it starts, so chunks are requested in order of first use up to ``readahead``
    chunks beyond the batch being served: decoding (which releases the GIL) overlaps the training step on a local
    disk, and request latency is hidden on a remote store. ``readahead=0`` reads each chunk when it is first needed.
    """

    def __init__(
        self,
        arrays: dict[str, Any],
        chunk_size: int,
        batches: list[np.ndarray],
        *,
        readahead: int,
        threads: int,
        sums: ChunkSums | None = None,
        verified: set[tuple[str, int]] | None = None,
    ) -> None:
        self.arrays, self.chunk_size, self.readahead = arrays, chunk_size, readahead
        self.sums, self.verified = sums, set() if verified is None else verified
        self.schedule: list[int] = []  # chunks in order of first use
        self.needs: list[int] = []  # per batch: position in the schedule of the last chunk it needs
        last_use: dict[int, int] = {}
        seen: dict[int, int] = {}
        for b, idxs in enumerate(batches):
            chunks = list(dict.fromkeys((idxs // chunk_size).tolist()))
            for c in chunks:
                if c not in seen:
                    seen[c] = len(self.schedule)
                    self.schedule.append(c)
                last_use[c] = b
            self.needs.append(max((seen[c] for c in chunks), default=-1))
        self.free_after: list[list[int]] = [[] for _ in batches]  # per batch: chunks not needed after it
        for c, b in last_use.items():
            self.free_after[b].append(c)
        self.submitted = 0
        self.pool = ThreadPoolExecutor(max_workers=threads) if readahead > 0 and threads > 0 else None
        self.chunks: dict[tuple[str, int], Future | np.ndarray] = {}

    def _read(self, name: str, c: int) -> np.ndarray:
        block = self.arrays[name][c * self.chunk_size : (c + 1) * self.chunk_size]
        if self.sums is not None and (name, c) not in self.verified:
            self.sums.check(name, c, block)  # on the reading thread: hashing releases the GIL like decoding
            self.verified.add((name, c))
        return block

    def advance(self, b: int) -> None:
        """Request every chunk batch ``b`` needs, and ``readahead`` more."""
        until = min(len(self.schedule), self.needs[b] + 1 + (self.readahead if self.pool else 0))
        for c in self.schedule[self.submitted : until]:
            for name in self.arrays:
                self.chunks[(name, c)] = self.pool.submit(self._read, name, c) if self.pool else self._read(name, c)
        self.submitted = max(self.submitted, until)

    def release(self, b: int) -> None:
        """Drop the chunks whose last use was batch ``b``."""
        for c in self.free_after[b]:
            for name in self.arrays:
                self.chunks.pop((name, c), None)

    def block(self, name: str, c: int) -> np.ndarray:
        block = self.chunks[(name, c)]
        if isinstance(block, Future):
            block = self.chunks[(name, c)] = block.result()
        return block

    def row(self, name: str, idx: int) -> np.ndarray:
        return self.block(name, idx // self.chunk_size)[idx % self.chunk_size]

    def gather(self, name: str, idxs: np.ndarray) -> np.ndarray:
        """Rows ``idxs`` of an array, one fancy-indexing copy per chunk touched."""
        chunks = idxs // self.chunk_size
        first = self.block(name, int(chunks[0]))
        out = np.empty((len(idxs), *first.shape[1:]), dtype=first.dtype)
        for c in np.unique(chunks):
            pos = np.flatnonzero(chunks == c)
            out[pos] = self.block(name, int(c))[idxs[pos] - c * self.chunk_size]
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.chunks.clear()


def make_loader(dataset: StoreDataset, *, num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``dataset`` with its batch size (or its own collated batches), spawned workers."""
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"multiprocessing_context": "spawn", "persistent_workers": False, "prefetch_factor": 4}
    batch_size = None if dataset.collate else dataset.batch_size
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, **kwargs)
