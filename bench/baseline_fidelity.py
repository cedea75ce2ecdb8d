"""Is the project's SimCLR baseline as strong as a plain one? Same npz, same probe, numbers side by side.

For each seed it trains (1) the independent reference (bench/reference_simclr.py), (2) ``topo train --stage visual
--method simclr`` with the reference's options (``--visual-aug simclr``, crop 0.2–1, AdamW lr 1e-3 at batch 128,
wd 1e-4, no warm-up, constant lr, projector 512-512-128, τ 0.2, same stem) and (3) ``topo train`` with the project's
defaults for everything but backbone, epochs and batch; then probes all three with the project's probe
(standardised features + L2 logistic regression, C chosen on val) and prints ACC / AUC beside the test split's
majority rate.

    python bench/baseline_fidelity.py --npz data/breastmnist.npz --store stores/breastmnist.zarr --epochs 15 \\
        --seeds 0,1,2 --work /tmp/fidelity [--no-small-stem] [--variants reference,matched,defaults]

``--variants no-aug,no-lr,...`` runs the matched recipe with one factor at the project's default each (which
default costs what); ``--variants with-schedule,...`` runs the defaults with one factor from the reference (is that
factor enough to close the gap).

The store must have been built from the same npz (``topo build-store --dataset npz --data-dir NPZ --out STORE``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# The reference's recipe, factor by factor; every factor left out falls back to the project's default.
FACTORS = {
    "aug": ["--visual-aug", "simclr"],
    "crop": ["--crop-scale", "0.2,1.0"],
    "lr": ["--lr", "2e-3"],  # 2e-3 per 256 = 1e-3 at batch 128
    "wd": ["--weight-decay", "1e-4"],
    "schedule": ["--warmup-epochs", "0", "--lr-schedule", "constant"],
    "head": [
        "--method-option", "proj_hidden_dim=512", "--method-option", "proj_dim=128",
        "--method-option", "temperature=0.2",
    ],
}  # fmt: skip
MATCHED = [arg for args in FACTORS.values() for arg in args]


def variant_args(variant: str) -> list[str]:
    """The ``topo train`` options of a row.

    ``matched`` (the reference's recipe), ``defaults`` (the project's), ``no-FACTOR`` (matched, with that one factor
    at the project's default) or ``with-FACTOR`` (the defaults, with that one factor taken from the reference).
    """
    if variant == "matched":
        return MATCHED
    if variant == "defaults":
        return []
    kind, _, factor = variant.partition("-")
    if kind == "no" and factor in FACTORS:
        return [arg for name, args in FACTORS.items() if name != factor for arg in args]
    if kind == "with" and factor in FACTORS:
        return list(FACTORS[factor])
    names = ",".join(FACTORS)
    raise SystemExit(f"unknown variant {variant!r}: reference, matched, defaults, no-{{{names}}} or with-{{{names}}}")


def probe(feats: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    from topo.trainer.eval.features import FeatureSet
    from topo.trainer.eval.probe import linear_probe

    # The npz's own split is disjoint by construction; offset indices keep sample ids distinct across splits.
    sets = {
        s: FeatureSet(s, x, y, sample_ids=np.arange(len(y)) + 10**6 * i) for i, (s, (x, y)) in enumerate(feats.items())
    }
    n_classes = int(max(y.max() for _, y in feats.values())) + 1
    res = linear_probe(sets["train"], sets["val"], sets["test"], num_classes=n_classes)
    return {
        "acc": res.test["acc"],
        "auc": res.test["auc"],
        "majority": res.references["test"]["majority_acc"],
        "C": res.selection.c,
        "warnings": list(res.warnings),
    }


def reference(args, seed: int) -> tuple[dict, float]:
    sys.path.insert(0, str(HERE))
    import reference_simclr

    feats, wall = reference_simclr.train(args.npz, epochs=args.epochs, seed=seed, small_stem=args.small_stem)
    return feats, wall


def project(args, seed: int, extra: list[str], name: str) -> tuple[dict, float]:
    from topo.trainer.eval.feature_cache import cached_features

    ws = Path(args.work) / name
    cmd = [
        sys.executable, "-m", "topo.cli", "train", "--store", args.store, "--stage", "visual", "--method", "simclr",
        "--backbone", "resnet18", "--epochs", str(args.epochs), "--batch-size", "128", "--seed", str(seed),
        "--small-input" if args.small_stem else "--no-small-input", "--monitor-every", "0", "--no-progress",
        "--device", "cpu", "--workspace", str(ws), "--overwrite", *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    ck = next((ws / "runs").rglob("final.pt"))
    sets, _, _ = cached_features(ck, args.store)
    return {s: (fs.x, fs.y) for s, fs in sets.items()}, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--small-stem", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--variants", default="reference,matched,defaults")
    ap.add_argument("--work", default="fidelity-work")
    ap.add_argument("--out", default=None, help="JSON file for the results")
    a = ap.parse_args()
    rows = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        for variant in a.variants.split(","):
            if variant == "reference":
                feats, wall = reference(a, seed)
            else:
                feats, wall = project(a, seed, variant_args(variant), f"{variant}-seed{seed}")
            r = {"variant": variant, "seed": seed, "epochs": a.epochs, "wall_s": wall, **probe(feats)}
            rows.append(r)
            print(json.dumps(r), flush=True)
    print("\nvariant      seed  test ACC  test AUC  majority  C       wall s")
    for r in rows:
        print(
            f"{r['variant']:<12} {r['seed']:>4}  {100 * r['acc']:8.1f}  {100 * r['auc']:8.1f}  "
            f"{100 * r['majority']:8.1f}  {r['C']:<7.3g} {r['wall_s']:6.0f}"
        )
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
