"""A store killed while it is being created resumes or can be overwritten; it is never wedged.

The kill loop runs ``create_store`` in a subprocess and SIGKILLs it at random moments inside the ~20 ms the
creation takes (arrays, attributes, build config), then checks that the same ``create_store`` call goes on and that
``remove_store`` (what ``--overwrite`` does) accepts whatever was left.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zarr

from topo.store_schema import Geometry, StoreError, StoreFiles, create_store, open_store, remove_store
from topo.store_schema.creation import creating_path

GEOM = Geometry(num_samples=40, height=16, width=16, channels=1, k0=4, k1=4, chunk_size=8)
ATTRS = {
    "dataset": {"name": "t", "class_names": ["a", "b"], "split_names": ["train", "val", "test"]},
    "persistence": {"direction": "sublevel", "k0": 4, "k1": 4},
    "roi": {"backend": "none", "params": {}},
    "provenance": {},
}
CONFIG = {"dataset": "t", "chunk_size": 8}

SCRIPT = f"""
import sys
from topo.store_schema import Geometry, create_store
g = Geometry(num_samples=40, height=16, width=16, channels=1, k0=4, k1=4, chunk_size=8)
print("ready", flush=True)
sys.stdin.readline()
create_store(sys.argv[1], g, {ATTRS!r}, build_config={CONFIG!r})
print("done", flush=True)
"""


def _kill_during_create(out: Path, delay: float) -> bool:
    """Start a creation, kill it ``delay`` s after it begins; return whether it finished first."""
    p = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout is not None and p.stdin is not None
        assert p.stdout.readline().strip() == "ready"
        p.stdin.write("go\n")
        p.stdin.flush()
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
    return p.returncode == 0


@pytest.mark.slow  # ten subprocesses, each importing zarr
def test_kill_anywhere_in_creation_leaves_a_store_that_resumes_or_is_overwritten(tmp_path: Path) -> None:
    rng = random.Random(19)
    interrupted = 0
    for i in range(10):
        out = tmp_path / f"s{i}.zarr"
        finished = _kill_during_create(out, rng.uniform(0.0, 0.03))
        interrupted += not finished
        left = out.exists() or creating_path(out).exists()
        st = create_store(out, GEOM, ATTRS, build_config=CONFIG)  # resumes or starts afresh, never refuses
        assert st.problems() == ["build incomplete (re-run the same build-store command to resume)"], i
        assert not creating_path(out).exists()
        remove_store(out)
        assert not out.exists(), f"kill {i}: --overwrite left the store (anything left before: {left})"
    assert interrupted >= 3, "the kills hardly ever landed inside creation; the test did not test it"


def test_a_store_wedged_by_an_older_build_is_recreated(tmp_path: Path) -> None:
    out = tmp_path / "wedged.zarr"
    create_store(out, GEOM, ATTRS, build_config=CONFIG)
    (out / StoreFiles.BUILD_CONFIG).unlink()  # what a kill between zarr.json and the config used to leave
    st = create_store(out, GEOM, ATTRS, build_config=CONFIG)
    assert json.loads((out / StoreFiles.BUILD_CONFIG).read_text()) == CONFIG
    assert not st.is_complete
    (out / StoreFiles.BUILD_CONFIG).unlink()
    remove_store(out)  # --overwrite accepts it too
    assert not out.exists()


def test_overwrite_refuses_what_is_not_ours(tmp_path: Path) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    with pytest.raises(StoreError, match=r"not a topo store.*refusing to delete"):
        remove_store(mine)
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")  # a Zarr group, but not a topo store
    with pytest.raises(StoreError, match="refusing"):
        remove_store(tmp_path / "plain.zarr")
    (tmp_path / "empty").mkdir()
    remove_store(tmp_path / "empty")
    assert not (tmp_path / "empty").exists() and (mine / "thesis.tex").exists()


def test_a_leftover_temp_folder_is_not_a_store(tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    tmp = creating_path(out)
    tmp.mkdir()
    (tmp / "zarr.json").write_text("{")  # half-written by a killed creation
    with pytest.raises(StoreError, match="no store"):
        open_store(out)
    create_store(out, GEOM, ATTRS, build_config=CONFIG)
    assert not tmp.exists() and open_store(out).num_samples == 40
