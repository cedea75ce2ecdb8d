"""Where a store lives: a local directory, a packed zip file, or a remote URL read through fsspec.

Only a local directory can be written. The other two are read-only views of a finished store.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zarr.storage

Kind = Literal["dir", "zip", "url"]


@dataclass(frozen=True)
class Location:
    """A store's address: ``kind`` is ``dir``, ``zip`` or ``url``; ``path`` the path or URL."""

    kind: Kind
    path: str

    @classmethod
    def parse(cls, where: str | os.PathLike[str]) -> Location:
        s = str(where)
        if "://" in s and not s.startswith("file://"):
            return cls("url", s.rstrip("/"))
        s = s.removeprefix("file://")
        if s.endswith(".zip") and Path(s).is_file():
            return cls("zip", s)
        return cls("dir", s)

    @property
    def local_dir(self) -> Path:
        if self.kind != "dir":
            raise ValueError(f"{self.path} is a {self.kind} location; only a local directory can be written")
        return Path(self.path)

    def zarr_store(self, *, read_only: bool = True) -> zarr.storage.StoreLike:
        if self.kind == "dir":
            return zarr.storage.LocalStore(self.path, read_only=read_only)
        if not read_only:
            raise ValueError(f"{self.path} is a {self.kind} location and can only be read")
        if self.kind == "zip":
            return zarr.storage.ZipStore(self.path, mode="r")
        return zarr.storage.FsspecStore.from_url(self.path, read_only=True)

    def read_bytes(self, key: str) -> bytes:
        """Bytes of a member such as ``manifest.parquet``; ``FileNotFoundError`` if absent."""
        if self.kind == "dir":
            return (Path(self.path) / key).read_bytes()
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                try:
                    return zf.read(key)
                except KeyError as e:
                    raise FileNotFoundError(f"{key} not in {self.path}") from e
        import fsspec

        with fsspec.open(f"{self.path}/{key}", "rb") as f:
            return f.read()

    def exists(self, key: str) -> bool:
        if self.kind == "dir":
            return (Path(self.path) / key).exists()
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                return key in zf.NameToInfo
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.path)
        return fs.exists(f"{root}/{key}")

    def __str__(self) -> str:
        return self.path
