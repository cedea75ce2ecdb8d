"""A packed store read in place over HTTP (a real loopback server with range requests), and clear remote errors."""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from topo.store_schema import StoreError, open_store
from topo.store_schema.location import Location
from topo.store_schema.pack import pack_store
from topo.store_schema.verify import verify_store


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single ``Range: bytes=a-b`` requests (what object stores and CDNs serve), quiet."""

    timeout = 10
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append(f"{self.command} {self.path} {self.headers.get('Range', '')}")

    def send_head(self):  # type: ignore[no-untyped-def]
        path, rng = self.translate_path(self.path), self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", (rng or "").strip())
        if m is None or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        if m.group(1):
            start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
        else:
            start, end = max(0, size - int(m.group(2))), size - 1
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass  # a client closing a connection early is not an error here


@pytest.fixture(scope="module")
def served_zip(small_store: Path, tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path_factory.mktemp("www")
    pack_store(small_store, root / "demo.zip")
    log: list[str] = []
    handler = type("Handler", (_RangeHandler,), {"requests": log})
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


def test_zip_urls_parse_to_fsspecs_chained_form():
    assert Location.parse("https://h/d/demo.zip").path == "zip::https://h/d/demo.zip"
    assert Location.parse("zip::https://h/d/demo.zip").remote_zip == "https://h/d/demo.zip"
    assert Location.parse("https://h/d/demo.zarr").remote_zip is None


@pytest.mark.slow
@pytest.mark.parametrize("form", ["plain", "chained"])
def test_a_zip_over_http_is_read_in_place_and_verifies(served_zip, small_store, form):
    base, log = served_zip
    url = f"{base}/demo.zip" if form == "plain" else f"zip::{base}/demo.zip"
    log.clear()
    st = open_store(url)
    local = open_store(small_store)
    assert st.fingerprint == local.fingerprint
    assert np.array_equal(st.array("images")[:5], local.array("images")[:5])
    assert any("bytes=" in r for r in log)  # ranges, not the whole file for every read
    report = verify_store(url)
    assert report.ok, report.problems

    from topo.cli.app import app

    res = CliRunner().invoke(app, ["store", "verify", url])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/nothing.zarr", "http://127.0.0.1:9/nothing.zip", "zip::http://127.0.0.1:9/x.zip"],
)
def test_unreachable_urls_are_store_errors_naming_the_url(url):
    with pytest.raises(StoreError, match=re.escape(url.removeprefix("zip::"))) as e:
        open_store(url)
    assert "check the URL" in str(e.value)


@pytest.mark.slow
def test_a_missing_zip_on_a_live_server_is_a_store_error(served_zip):
    base, _ = served_zip
    with pytest.raises(StoreError, match="no store at"):
        open_store(f"{base}/missing.zip")
    from topo.cli.app import app

    res = CliRunner().invoke(app, ["store", "verify", f"{base}/missing.zip"])
    assert res.exit_code == 1 and "Traceback" not in res.output and "missing.zip" in res.output
