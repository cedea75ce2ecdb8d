"""One writer per store: the lock beside the store refuses a second live writer and recovers from a killed one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from topo.cli.app import app
from topo.store_schema.lock import StoreLockedError, lock_path, writer_lock


def _write_lock(store, **owner):
    lock_path(store).write_text(json.dumps({"job": "build-store", "started": "2026-01-01T00:00:00", **owner}))


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    store = tmp_path / "s.zarr"
    with writer_lock(store, "build-store") as path:
        assert path == tmp_path / "s.zarr.lock" and json.loads(path.read_text())["pid"] == os.getpid()
        refused = pytest.raises(StoreLockedError, match=r"being written by build-store \(pid \d+ on .*wait for it")
        with refused, writer_lock(store, "calibrate-aug"):
            pass
    assert not lock_path(store).exists()  # released
    with writer_lock(store, "calibrate-aug"):  # and free again
        pass


def test_the_lock_is_released_when_the_job_fails(tmp_path):
    with pytest.raises(RuntimeError), writer_lock(tmp_path / "s.zarr", "build-store"):
        raise RuntimeError("boom")
    assert not lock_path(tmp_path / "s.zarr").exists()


def test_a_lock_left_by_a_killed_job_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(tmp_path / "s.zarr", host=socket.gethostname(), pid=dead.pid)
    with writer_lock(tmp_path / "s.zarr", "build-store") as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_a_lock_from_another_host_names_the_file_to_remove(tmp_path):
    _write_lock(tmp_path / "s.zarr", host="elsewhere.invalid", pid=1)
    refused = pytest.raises(StoreLockedError, match=r"if that job is gone, remove the lock file: .*s\.zarr\.lock")
    with refused, writer_lock(tmp_path / "s.zarr", "build-store"):
        pass


def test_build_store_refuses_a_locked_store_from_the_cli(tmp_path):
    out = tmp_path / "demo.zarr"
    _write_lock(out, host=socket.gethostname(), pid=os.getpid())  # a live writer: this very process
    res = CliRunner().invoke(app, ["build-store", "--dataset", "demo", "--out", str(out), "--no-progress"])
    assert res.exit_code == 2 and "is being written by build-store" in " ".join(res.output.split())
    assert not out.exists()


def test_calibration_refuses_a_store_being_written(small_store):
    _write_lock(small_store, job="calibrate-aug", host=socket.gethostname(), pid=os.getpid())
    try:
        res = CliRunner().invoke(app, ["calibrate-aug", "--store", str(small_store), "--no-progress"])
    finally:
        lock_path(small_store).unlink()
    assert res.exit_code == 2 and "is being written by calibrate-aug" in " ".join(res.output.split())
