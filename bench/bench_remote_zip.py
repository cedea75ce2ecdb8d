"""A packed store read in place over HTTP: requests and bytes fetched vs the zip's size, and verify time.

Serves a zip from a loopback HTTP server with range requests and counts what the client fetches for
open + 64 images, and for a full `verify_store`, against the same store read from the local directory.

    python bench/bench_remote_zip.py STORE_DIR
"""

from __future__ import annotations

import functools
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "store_schema"))
from test_remote_zip import _RangeHandler, _Server

from topo.store_schema import open_store
from topo.store_schema.pack import pack_store
from topo.store_schema.verify import verify_store


class _Counting(_RangeHandler):
    sent: ClassVar[list[int]] = [0]

    def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
        data = source.read()
        self.sent[0] += len(data)
        outputfile.write(data)


def main(store: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        zp = Path(d) / "demo.zip"
        pack_store(store, zp)
        log: list[str] = []
        handler = type("H", (_Counting,), {"requests": log})
        srv = _Server(("127.0.0.1", 0), functools.partial(handler, directory=d))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{srv.server_address[1]}/demo.zip"
        t = time.perf_counter()
        st = open_store(url)
        st.array("images")[:64]
        t_open = time.perf_counter() - t
        print(
            f"zip {zp.stat().st_size / 1e6:.2f} MB; open + 64 images: {len(log)} requests, "
            f"{_Counting.sent[0] / 1e6:.2f} MB fetched, {t_open:.2f} s"
        )
        log.clear()
        _Counting.sent[0] = 0
        t = time.perf_counter()
        ok = verify_store(url).ok
        t_remote = time.perf_counter() - t
        print(f"verify over HTTP: ok={ok}, {len(log)} requests, {_Counting.sent[0] / 1e6:.2f} MB, {t_remote:.2f} s")
        t = time.perf_counter()
        verify_store(store)
        print(f"verify local directory: {time.perf_counter() - t:.2f} s")
        srv.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
