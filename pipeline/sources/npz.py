"""MedMNIST-layout ``.npz`` files: ``{train,val,test}_images`` (N×H×W[×C] uint8) and ``*_labels`` (N×1).

Rows are streamed straight out of the zip member, so a 224² PathMNIST file is never loaded whole.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from topo.pipeline.sources.base import SPLITS, Payload, SampleRecord, Source, SourceError, SourceInfo


class NpyMember:
    """Random-ish access to the rows of one ``.npy`` inside a ``.npz``, reading forward only when possible."""

    def __init__(self, path: Path, member: str) -> None:
        self.path, self.member = path, member
        self._open()

    def _open(self) -> None:
        self._zf = zipfile.ZipFile(self.path)
        self._f = self._zf.open(self.member)
        version = np.lib.format.read_magic(self._f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(self._f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(self._f)
        if fortran or dtype.hasobject:
            raise SourceError(f"{self.path}:{self.member} is Fortran-ordered or holds objects; cannot stream it")
        self.shape, self.dtype = tuple(shape), dtype
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self._pos = 0

    def rows(self, start: int, stop: int) -> np.ndarray:
        if start < self._pos:  # a compressed member cannot seek backwards cheaply: start over
            self.close()
            self._open()
        if start > self._pos:
            self._skip((start - self._pos) * self._row_bytes)
        n = stop - start
        buf = self._f.read(n * self._row_bytes)
        if len(buf) != n * self._row_bytes:
            raise SourceError(f"{self.path}:{self.member} is truncated")
        self._pos = stop
        return np.frombuffer(buf, dtype=self.dtype).reshape((n, *self.shape[1:]))

    def _skip(self, nbytes: int) -> None:
        while nbytes > 0:
            got = len(self._f.read(min(nbytes, 1 << 24)))
            if got == 0:
                raise SourceError(f"{self.path}:{self.member} is truncated")
            nbytes -= got

    def close(self) -> None:
        self._f.close()
        self._zf.close()


def read_npz_member(path: Path, member: str) -> np.ndarray:
    """A whole (small) member such as a label array, without allowing pickles."""
    with np.load(path, allow_pickle=False) as z:
        if member not in z.files:
            raise SourceError(f"{path} has no '{member}' (keys: {', '.join(z.files)})")
        return np.asarray(z[member])


class NpzSource(Source):
    """A ``.npz`` in MedMNIST layout (official splits taken from the file)."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        class_names: Sequence[str] | None = None,
        license: str = "unknown",
        description: str = "",
        id_prefix: str | None = None,
    ) -> None:
        self.path = Path(path)
        self._readers: dict[str, NpyMember] = {}
        if not self.path.is_file():
            raise SourceError(f"no file at {self.path}")
        self.name = name
        self.id_prefix = id_prefix or name
        self._license, self._description = license, description
        with zipfile.ZipFile(self.path) as zf:
            names = {n.removesuffix(".npy") for n in zf.namelist()}
        self.splits = [s for s in SPLITS if f"{s}_images" in names and f"{s}_labels" in names]
        if not self.splits:
            raise SourceError(
                f"{self.path} is not in MedMNIST layout: expected train_images/train_labels (and val_, test_) "
                f"arrays, found {sorted(names)}"
            )
        self._labels = {s: self._read_labels(s) for s in self.splits}
        n_classes = int(max(int(v.max(initial=-1)) for v in self._labels.values())) + 1
        if class_names is None and "class_names" in names:
            class_names = [str(c) for c in read_npz_member(self.path, "class_names")]
        if not class_names:
            _check_label_range(self.path, self._labels)
        self.class_names = tuple(class_names) if class_names else tuple(str(i) for i in range(n_classes))
        first = NpyMember(self.path, f"{self.splits[0]}_images.npy")
        self._image_shape = first.shape[1:]
        first.close()

    def _read_labels(self, split: str) -> np.ndarray:
        lab = read_npz_member(self.path, f"{split}_labels")
        if lab.ndim == 2 and lab.shape[1] > 1:
            raise SourceError(f"{self.path}: {split}_labels has {lab.shape[1]} columns (multi-label is unsupported)")
        return lab.reshape(-1).astype(np.int64)

    def info(self) -> SourceInfo:
        shape = self._image_shape
        channels = 1 if len(shape) == 2 else int(shape[2])
        return SourceInfo(
            name=self.name,
            class_names=self.class_names,
            license=self._license,
            channels=1 if channels == 1 else 3,
            image_size=int(shape[0]) if shape[0] == shape[1] else None,
            split_names=SPLITS,
            description=self._description,
            split_policy=f"official ({self.path.name})",
        )

    def records(self) -> list[SampleRecord]:
        out = []
        for split in self.splits:
            for i, label in enumerate(self._labels[split]):
                out.append(
                    SampleRecord(
                        sample_id=f"{self.id_prefix}/{split}/{i:06d}",
                        source_ref=f"{self.path.name}:{split}_images[{i}]",
                        label=int(label),
                        split=split,
                    )
                )
        return out

    def payloads(self, records: Sequence[SampleRecord]) -> Iterator[Payload]:
        # Records of one chunk are consecutive rows of one or two splits: read each run in one go. Readers stay
        # open between calls because the driver asks for chunks in order and a zip member only reads forward.
        readers = self._readers
        i = 0
        while i < len(records):
            split = records[i].split
            start = _row(records[i])
            j = i
            while (
                j + 1 < len(records) and records[j + 1].split == split and _row(records[j + 1]) == _row(records[j]) + 1
            ):
                j += 1
            reader = readers.get(split) or readers.setdefault(split, NpyMember(self.path, f"{split}_images.npy"))
            block = reader.rows(start, start + (j - i) + 1)
            yield from block  # views of one read: Ray copies each once into its object store
            i = j + 1

    def close(self) -> None:
        for r in self._readers.values():
            r.close()
        self._readers.clear()

    def content_options(self) -> dict[str, Any]:
        return {"file": self.path.name}

    def input_files(self, records: Sequence[SampleRecord]) -> list[Path | None]:
        return [self.path] * len(records)


def _row(rec: SampleRecord) -> int:
    return int(rec.source_ref.rsplit("[", 1)[1].rstrip("]"))


def _check_label_range(path: Path, labels: dict[str, np.ndarray]) -> None:
    """Without class names the classes are 0..max label: refuse labels that leave classes without any sample.

    A stray label (99 among 0/1) would otherwise make a 100-class store whose classifier heads are mostly empty.
    """
    present = np.unique(np.concatenate([v for v in labels.values()]))
    if present.size and present.min() < 0:
        raise SourceError(f"{path}: negative label {int(present.min())}; labels must be 0..n-1")
    n = int(present.max()) + 1 if present.size else 0
    empty = n - present.size
    if empty:
        raise SourceError(
            f"{path}: labels run 0..{n - 1} but {empty} of those classes have no sample "
            f"(labels present: {', '.join(map(str, present[:10].tolist()))}{' ...' if present.size > 10 else ''}); "
            "add a class_names array to the file (or relabel 0..n-1)"
        )
