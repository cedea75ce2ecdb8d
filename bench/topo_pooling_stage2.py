"""Does a count-aware pooling let the topology branch learn a count? Stage 2 (topology-only SSL) per pooling, probed.

    python bench/topo_pooling_stage2.py STORE.zarr --epochs 10 --seeds 0 --work /tmp/pool

STORE is a calibrated synthetic-betti store (``topo build-store --dataset synthetic-betti --roi none`` then
``topo calibrate-aug``). For each ``--topo-pooling`` it runs ``topo train --stage topo --method simclr`` and probes
the topology encoder's features with the project's probe (C chosen on val, test read once). Results:
bench/RESULTS.md (synthetic set).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from topo.trainer.eval.feature_cache import cached_features
from topo.trainer.eval.probe import linear_probe
from topo.trainer.models.topology_encoder import POOLINGS


def run(store: str, pooling: str, seed: int, epochs: int, work: Path) -> dict:
    ws = work / f"{pooling}-seed{seed}"
    cmd = [
        sys.executable, "-m", "topo.cli", "train", "--store", store, "--stage", "topo", "--method", "simclr",
        "--epochs", str(epochs), "--batch-size", "128", "--seed", str(seed), "--topo-width", "128",
        "--topo-pooling", pooling, "--monitor-every", "0", "--no-progress", "--device", "cpu",
        "--workspace", str(ws), "--overwrite",
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    ck = next((ws / "runs").rglob("final.pt"))
    sets, _, _ = cached_features(ck, store)
    res = linear_probe(sets["train"], sets["val"], sets["test"])
    return {
        "pooling": pooling, "seed": seed, "epochs": epochs, "wall_s": round(wall, 1),
        "val_acc": res.selection.val_score, "test_acc": res.test["acc"], "C": res.selection.c,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--poolings", default=",".join(POOLINGS))
    ap.add_argument("--work", type=Path, default=Path("pooling-work"))
    a = ap.parse_args()
    rows = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        for pooling in a.poolings.split(","):
            rows.append(run(a.store, pooling, seed, a.epochs, a.work))
            print(json.dumps(rows[-1]), flush=True)
    print("\npooling        seed  val ACC  test ACC  C       wall s")
    for r in rows:
        print(
            f"{r['pooling']:<14} {r['seed']:>4}  {100 * r['val_acc']:7.1f}  {100 * r['test_acc']:8.1f}  "
            f"{r['C']:<7.3g} {r['wall_s']:6.0f}"
        )


if __name__ == "__main__":
    main()
