"""Where a store lives: a local directory, a packed zip file, or a remote URL read through fsspec.

Only a local directory can be written. The other two are read-only views of a finished store. A packed zip at a
URL (``https://host/demo.zip``, or fsspec's chained form ``zip::https://host/demo.zip``) is read in place through
fsspec's zip filesystem: only the central directory and the members read are fetched (with HTTP range requests).

Network and permission failures while opening or reading a remote store become :class:`StoreError` naming the
URL, with a hint; a missing member stays ``FileNotFoundError`` (callers test for absent optional files).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zarr.storage

from topo.store_schema.errors import StoreError

_ZIP_PREFIX = "zip::"

Kind = Literal["dir", "zip", "url"]


@dataclass(frozen=True)
class Location:
    """A store's address: ``kind`` is ``dir``, ``zip`` or ``url``; ``path`` the path or URL."""

    kind: Kind
    path: str

    @classmethod
    def parse(cls, where: str | os.PathLike[str]) -> Location:
        s = str(where)
        if s.startswith(_ZIP_PREFIX):
            return cls("url", s.rstrip("/"))
        if "://" in s and not s.startswith("file://"):
            url = s.rstrip("/")
            # A zip at a URL is read through fsspec's zip filesystem (written in fsspec's chained form).
            return cls("url", _ZIP_PREFIX + url if url.split("?")[0].endswith(".zip") else url)
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
        with remote_errors(self.path, opening=True):
            if self.remote_zip is not None:
                return zarr.storage.FsspecStore.from_url(
                    "zip://", storage_options={"fo": self.remote_zip}, read_only=True
                )
            store = zarr.storage.FsspecStore.from_url(self.path, read_only=True)
            self.read_bytes("zarr.json")  # reach the server now: a clear error here, not deep inside zarr
            return store

    @property
    def remote_zip(self) -> str | None:
        """The URL of the zip file itself for a remote zip store, else ``None``."""
        return self.path.removeprefix(_ZIP_PREFIX) if self.path.startswith(_ZIP_PREFIX) else None

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

        url = f"zip://{key}::{self.remote_zip}" if self.remote_zip else f"{self.path}/{key}"
        with remote_errors(self.path), fsspec.open(url, "rb") as f:
            return f.read()

    def exists(self, key: str) -> bool:
        if self.kind == "dir":
            return (Path(self.path) / key).exists()
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                return key in zf.NameToInfo
        import fsspec

        with remote_errors(self.path):
            if self.remote_zip:
                return fsspec.filesystem("zip", fo=self.remote_zip).exists(key)
            fs, root = fsspec.core.url_to_fs(self.path)
            return fs.exists(f"{root}/{key}")

    def __str__(self) -> str:
        return self.path


_HINT = (
    "check the URL, that the server is up and reachable from here, and that the store is published there "
    "(a store directory, or a packed .zip served with HTTP range requests)"
)


def _status(e: BaseException) -> int | None:
    return getattr(e, "status", None) or getattr(e, "code", None)


@contextmanager
def remote_errors(url: str, *, opening: bool = False) -> Iterator[None]:
    """Turn network and permission failures on ``url`` into :class:`StoreError` with the URL and a hint.

    ``FileNotFoundError`` passes through unless ``opening`` (then nothing is there at all: a StoreError too).
    """
    try:
        yield
    except StoreError:
        raise
    except FileNotFoundError as e:
        if not opening:
            raise
        raise StoreError(f"no store at {url} ({e}); {_HINT}") from e
    except PermissionError as e:
        raise StoreError(f"permission denied reading {url} ({e}); check the credentials or the URL's access") from e
    except Exception as e:  # aiohttp, ssl, socket and timeout errors have no common base but Exception
        code = _status(e)
        if code in (401, 403):
            raise StoreError(f"access denied (HTTP {code}) reading {url}; the server needs credentials") from e
        if not (isinstance(e, OSError | TimeoutError) or type(e).__module__.split(".")[0] in ("aiohttp", "ssl")):
            raise
        raise StoreError(f"cannot read {url}: {type(e).__name__}: {e}; {_HINT}") from e
