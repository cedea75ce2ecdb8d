"""SIGKILL a real ``topo build-store`` during creation, compute and finalise; every resumed store equals the
uninterrupted one (arrays, manifest, checksums, fingerprint) and verifies. The longer soak is bench/soak_kill.py,
which this test drives with few trials."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "soak_kill.py"

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find processes"),
    pytest.mark.slow,  # a reference build plus two CLI builds per trial, each starting its own Ray
]


def _soak():
    spec = importlib.util.spec_from_file_location("soak_kill", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_random_kills_in_every_phase_resume_to_the_same_store(tmp_path: Path) -> None:
    soak = _soak()
    results = soak.soak(trials=3, seed=19, images=16, chunk=4, work=tmp_path, phases=("create", "compute", "finalise"))
    assert all(r["identical"] for r in results), results
    assert sum(r["kill"] == "killed" for r in results) >= 2, results  # the kills must land, or nothing was tested
