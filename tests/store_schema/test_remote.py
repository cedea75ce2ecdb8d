"""Reading a store over HTTP: a real `http.server` on 127.0.0.1, read through fsspec/aiohttp by `open_store`."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from topo.store_schema import ARRAYS, StoreError, open_store
from topo.store_schema.diagrams import read_diagrams
from topo.store_schema.verify import verify_store


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, records request paths, logs nothing."""

    timeout = 10  # a stuck client connection ends instead of holding a server thread
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append(f"{self.command} {self.path}")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        # fsspec may close a connection before reading a whole body (e.g. after learning a size): not an error.
        pass


@pytest.fixture(scope="module")
def served(small_store: Path, tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    """Base URL of a loopback server for a folder holding demo.zarr and broken.zarr (a chunk deleted)."""
    root = tmp_path_factory.mktemp("www")
    shutil.copytree(small_store, root / "demo.zarr")
    shutil.copytree(small_store, root / "broken.zarr")
    (root / "broken.zarr" / "images" / "c" / "7" / "0" / "0" / "0").unlink()
    log: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requests": log})
    srv = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", log
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=10)
        assert not t.is_alive()


@pytest.mark.slow  # ~9 s on two busy cores
def test_open_read_and_verify_over_http(served: tuple[str, list[str]], small_store: Path) -> None:
    base, log = served
    url = f"{base}/demo.zarr"
    remote, local = open_store(url), open_store(small_store)
    assert remote.location.kind == "url"
    assert remote.attrs == local.attrs and remote.fingerprint == local.fingerprint
    for name in ARRAYS:
        np.testing.assert_array_equal(remote.array(name)[:], local.array(name)[:])
    np.testing.assert_array_equal(remote.array("images")[100:140], local.array("images")[100:140])
    assert remote.manifest().equals(local.manifest())
    assert remote.problems() == []
    report = verify_store(url)
    assert report.ok, report.problems
    assert report.chunks_checked == len(ARRAYS) * local.geometry.num_chunks
    # The reads really went over the wire: metadata, tables and chunk files.
    gets = [r for r in log if r.startswith("GET /demo.zarr/")]
    assert "GET /demo.zarr/zarr.json" in gets and "GET /demo.zarr/manifest.parquet" in gets
    assert any(r.startswith("GET /demo.zarr/images/c/") for r in gets)


def test_diagrams_over_http_match_local(served: tuple[str, list[str]], small_store: Path) -> None:
    base, _ = served
    idx = [0, 1, 63, 64, 500, 779]
    remote = read_diagrams(f"{base}/demo.zarr", idx)
    local = read_diagrams(small_store, idx)
    for r, loc in zip(remote, local, strict=True):
        for a, b in zip(r, loc, strict=True):
            np.testing.assert_array_equal(a, b)


def test_damage_is_reported_over_http(served: tuple[str, list[str]]) -> None:
    base, _ = served
    report = verify_store(f"{base}/broken.zarr")
    assert report.problems == [
        "array 'images' chunk 7 (samples 448–511) does not match its checksum: altered or missing"
    ]


def test_nothing_at_the_url(served: tuple[str, list[str]]) -> None:
    base, _ = served
    with pytest.raises(StoreError, match=r"nope\.zarr"):
        open_store(f"{base}/nope.zarr")
