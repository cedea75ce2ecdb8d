"""The prepared GPU benchmark works before a GPU is ever seen: ``bench/gpu.sh --dry-run`` runs every part on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from gpu import PARTS, TOTAL_BUDGET_S  # noqa: E402


def test_gpu_caps_fit_eight_minutes():
    caps = [cap for _, cap, _ in PARTS]
    assert sum(caps) <= TOTAL_BUDGET_S <= 8 * 60 - 10


@pytest.mark.slow  # every part in its own process, one Ray start: minutes on two busy cores
def test_dry_run_writes_every_part(tmp_path):
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu.sh"), "--dry-run", "--out-dir", str(tmp_path)],
        env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"},  # this interpreter, venv or not
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu-cpu-dry-run.json").read_text())
    assert result["dry_run"] and list(result["parts"]) == [name for name, _, _ in PARTS]
    for name, part in result["parts"].items():
        assert part["status"] == "ok", (name, part)
        assert part["rows"], name
    encoder = {r["encoder"] for r in result["parts"]["sam_encoder"]["rows"]}
    assert encoder == {"fp32", "bf16 autocast", "bf16 + SDPA"}
    runs = [(r["method"], r["run"]) for r in result["parts"]["train"]["rows"]]
    assert sum(m == "simclr" for m, _ in runs) == 2 and sum(m == "byol" for m, _ in runs) == 2
    assert sum(run.startswith("loader alone") for _, run in runs) == 2
    for r in result["parts"]["train"]["rows"]:
        assert r["img/s"] > 0
    md = (tmp_path / "gpu-cpu-dry-run.md").read_text()
    assert "CPU dry run" in md and "| simclr | +TopoCL (stage 3, online PDs) |" in md
    assert md in proc.stdout
