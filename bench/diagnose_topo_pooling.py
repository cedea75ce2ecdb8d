"""Can a pooled topology encoder count? Linear probes on stored-diagram features vs the TopologyEncoder's output.

    python bench/diagnose_topo_pooling.py STORE.zarr

STORE is a synthetic-betti store (e.g. the one ``bench/reproduce_topocl.py`` builds under ``--out``). Logistic
regression on standardised features, C chosen on val, test read once. Results: bench/RESULTS.md (synthetic set).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
import zarr
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from topo.trainer.models.topology_encoder import POOLINGS, TopologyEncoder

LONG = 0.2  # persistence above which an H1 pair is a hole in this generator (holes ≈ 0.45, noise < 0.09)


def probe(x: np.ndarray, y: np.ndarray, split: np.ndarray, name: str) -> None:
    rows = []
    for c in (0.01, 0.1, 1, 10):
        sc = StandardScaler().fit(x[split == 0])
        lr = LogisticRegression(C=c, max_iter=3000).fit(sc.transform(x[split == 0]), y[split == 0])
        rows.append((lr.score(sc.transform(x[split == 1]), y[split == 1]), c, lr, sc))
    val, c, lr, sc = max(rows, key=lambda r: r[0])
    test = lr.score(sc.transform(x[split == 2]), y[split == 2])
    print(f"{name:62s} C={c:<5} val {100 * val:5.1f}  test {100 * test:5.1f}")


def main(store: str) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    g = zarr.open_group(store, mode="r")
    y, split = np.asarray(g["labels"][:]), np.asarray(g["splits"][:])
    view = {k: torch.from_numpy(np.asarray(g[k][:])) for k in ("pd_h0", "n_h0", "pd_h1", "n_h1")}
    view = {k: t.float() if k.startswith("pd") else t.long() for k, t in view.items()}
    pers = (view["pd_h1"][..., 1] - view["pd_h1"][..., 0]).numpy()
    n1 = view["n_h1"].numpy()
    long = (pers > LONG) & (np.arange(pers.shape[1])[None] < n1[:, None])
    probe(long.sum(1)[:, None], y, split, f"count of H1 pairs with persistence > {LONG}")
    probe(-np.sort(-pers, 1)[:, :8], y, split, "top-8 H1 persistences, sorted")
    probe((long.sum(1) / np.maximum(n1, 1))[:, None], y, split, "fraction of valid H1 pairs that are long (mean pool)")
    frac_any = np.c_[long.sum(1) / np.maximum(n1, 1), long.any(1)]
    probe(frac_any, y, split, "fraction + any (max + mean pool)")
    probe(np.c_[frac_any, long.sum(1) / pers.shape[1]], y, split, "fraction + any + count / k (max + mean + sum pool)")
    for pooling in POOLINGS:
        torch.manual_seed(0)
        enc = TopologyEncoder(k0=view["pd_h0"].shape[1], k1=pers.shape[1], width=128, pooling=pooling).eval()
        with torch.no_grad():
            feats = enc(view).numpy()
        probe(feats, y, split, f"TopologyEncoder(width=128, pooling={pooling}), random init, seed 0")


if __name__ == "__main__":
    main(sys.argv[1])
