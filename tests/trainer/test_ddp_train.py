"""`topo train` under torchrun: two CPU processes (gloo) train one model on a sharded store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from topo.trainer.checkpoint import load_checkpoint


def test_torchrun_two_processes_train_and_checkpoint(small_store, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", "29531", "-m", "topo.cli", "train",
           "--store", str(small_store), "--stage", "visual", "--method", "simclr", "--backbone", "resnet18",
           "--no-small-input", "--epochs", "1", "--max-steps", "3", "--batch-size", "32", "--num-workers", "0",
           "--device", "cpu", "--workspace", str(tmp_path), "--monitor-every", "0", "--no-progress",
           "--method-option", "proj_hidden_dim=64", "--method-option", "proj_dim=32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "runs" / "demo" / "simclr" / "visual-seed0" / "checkpoints" / "final.pt")
    assert ck["step"] == 3
    # Each rank read 16 of the 32 samples per step; the checkpoint is one model (DDP kept the replicas equal).
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert proc.stdout.count("visual: 3 steps") == 1  # only rank 0 reports
