"""Does ``topo eval``'s reported ACC agree with an independent scikit-learn probe on the very same features?

For every row of a ``results_<dataset>_<method>.json`` written by ``topo eval`` it reads the features ``topo eval``
cached beside that row's checkpoint (``<run>/features``), fits a plain scikit-learn pipeline
(``StandardScaler`` + ``LogisticRegression``) for each ``C`` of a 1e-4 … 1e2 grid on train, picks ``C`` on val
(val ACC, then val AUC, then the smaller ``C``) and scores test once. It shares no code with the project's probe.

    python bench/check_probe.py WORKSPACE/reports/results_demo_byol.json [--tolerance 0.01]

Exit status 1 when any row differs by more than the tolerance (default 1 ACC point).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CS = tuple(float(c) for c in np.logspace(-4, 2, 13))


def load_cached_split(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The cached ``(x, y)`` of one split, read straight from the ``.npy`` files ``topo eval`` wrote."""
    x = np.load(features_dir / f"{split}_x.npy", allow_pickle=False)
    y = np.load(features_dir / f"{split}_y.npy", allow_pickle=False)
    return np.asarray(x, np.float64), np.asarray(y, np.int64)


def _val_auc(model, x: np.ndarray, y: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    proba = model.predict_proba(x)
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    try:
        return float(roc_auc_score(y, proba, multi_class="ovr", labels=model.classes_))
    except ValueError:  # a val class the model never saw
        return float("nan")


def sklearn_probe_acc(splits: dict[str, tuple[np.ndarray, np.ndarray]], cs=CS) -> tuple[float, float]:
    """Test ACC and the chosen C of a scikit-learn probe selected on val."""
    (xt, yt), (xv, yv), (xs, ys) = splits["train"], splits["val"], splits["test"]
    best, best_key, best_c = None, None, None
    for i, c in enumerate(cs):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, tol=1e-6)).fit(xt, yt)
        auc = _val_auc(model, xv, yv)
        key = (model.score(xv, yv), -np.inf if np.isnan(auc) else auc, -i)
        if best_key is None or key > best_key:
            best, best_key, best_c = model, key, c
    return float(best.score(xs, ys)), float(best_c)


def compare(results_json: Path) -> list[dict]:
    """One record per row of the results file: reported ACC, scikit-learn's ACC, the C each chose."""
    rows = []
    for r in json.loads(results_json.read_text())["results"]:
        ck = Path(r["extras"]["checkpoint"])
        feats = ck.parent.parent / "features"
        ours = sklearn_probe_acc({s: load_cached_split(feats, s) for s in ("train", "val", "test")})
        rows.append(
            {
                "row": r["extras"].get("row", r["variant"]),
                "seed": r["seed"],
                "reported_acc": float(r["acc"]),
                "sklearn_acc": ours[0],
                "sklearn_c": ours[1],
                "reported_c": r["extras"]["probe"]["selection"]["C"],
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results_<dataset>_<method>.json from topo eval")
    ap.add_argument("--tolerance", type=float, default=0.01, help="largest ACC difference accepted (fraction)")
    a = ap.parse_args()
    rows = compare(a.results)
    print("row                          seed  reported ACC  sklearn ACC  diff   C (topo / sklearn)")
    worst = 0.0
    for r in rows:
        diff = r["reported_acc"] - r["sklearn_acc"]
        worst = max(worst, abs(diff))
        print(
            f"{r['row']:<28} {r['seed']:>4}  {100 * r['reported_acc']:12.1f}  {100 * r['sklearn_acc']:11.1f}  "
            f"{100 * diff:+5.1f}  {r['reported_c']:.3g} / {r['sklearn_c']:.3g}"
        )
    print(f"largest difference: {100 * worst:.2f} ACC points (tolerance {100 * a.tolerance:.2f})")
    sys.exit(1 if worst > a.tolerance else 0)


if __name__ == "__main__":
    main()
