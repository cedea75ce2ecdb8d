"""`topo train` under torchrun: two CPU processes (gloo) train one model on a sharded store."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from topo.trainer.checkpoint import load_checkpoint


@pytest.mark.slow  # ~25 s on two busy cores
def test_torchrun_two_processes_train_and_checkpoint(small_store, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    # --standalone: torchrun's rendezvous binds a free port chosen at run time (a fixed port collides with
    # another run, or anything else, holding it).
    cmd = [
        str(torchrun),
        *shlex.split("--standalone --nproc-per-node 2 -m topo.cli train --stage visual --method simclr"),
        *shlex.split("--backbone resnet18 --no-small-input --epochs 1 --max-steps 3 --batch-size 32 --num-workers 0"),
        *shlex.split("--device cpu --monitor-every 0 --no-progress"),
        *shlex.split("--method-option proj_hidden_dim=64 --method-option proj_dim=32"),
        *("--store", str(small_store), "--workspace", str(tmp_path)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = (tmp_path / "runs" / "demo" / "simclr").glob("visual-seed0-*/checkpoints/final.pt")
    ck = load_checkpoint(path)
    assert ck["step"] == 3
    # Each rank read 16 of the 32 samples per step; the checkpoint is one model (DDP kept the replicas equal).
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert proc.stdout.count("visual (1 epochs): 3 steps") == 1  # only rank 0 reports
