"""Write the synthetic Betti-number set as a MedMNIST-layout ``.npz`` (for bench/baseline_fidelity.py).

    python bench/synthetic_npz.py OUT.npz [--seed 0] [--size 28] [--sizes 800,200,400]

Then ``topo build-store --dataset npz --data-dir OUT.npz --out STORE`` builds the matching store. The images are the
generator's own (``topo.pipeline.sources.synthetic_betti``), labels 0–3 = 1–4 holes.
"""

from __future__ import annotations

import argparse

import numpy as np

from topo.pipeline.sources.synthetic_betti import N_HOLES, SyntheticBettiSource


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--sizes", default="800,200,400", help="train,val,test")
    a = ap.parse_args()
    sizes = dict(zip(("train", "val", "test"), (int(s) for s in a.sizes.split(",")), strict=True))
    src = SyntheticBettiSource(seed=a.seed, size=a.size, sizes=sizes)
    arrays = {}
    for split in sizes:
        x, y = src.arrays(split)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y.reshape(-1, 1).astype(np.uint8)
    names = [f"{k} hole{'s' if k > 1 else ''}" for k in N_HOLES]
    np.savez_compressed(a.out, **arrays, class_names=np.array(names))
    print(f"{a.out}: " + ", ".join(f"{s} {n}" for s, n in sizes.items()) + f"; classes {names}")


if __name__ == "__main__":
    main()
