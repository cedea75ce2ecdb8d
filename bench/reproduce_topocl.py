"""Baseline vs +TopoCL on the synthetic Betti-number set, several seeds, paired t-test, gate weights, wall time.

    python bench/reproduce_topocl.py --seeds 0 1 2 --epochs 4 --out bench/.repro-topocl

The store is generated (``synthetic-betti``, smaller splits than the registered ones so that CPUs can train it) and
the pixel vs diagram-feature logistic-regression check is printed first. Per seed: TopoCL = stage 1 (visual),
stage 2 (topology) and stage 3 (joint, the paper-exact views) for ``--epochs`` each; the baseline is stage 1 alone
for 3 × ``--epochs`` (the same number of passes over the data: compute-matched by epochs; wall times are reported
too). Both are evaluated with the repository's linear probe (selection on val, test once). Nothing is tuned on test.
Finished seeds are kept in ``OUT/rows.jsonl`` (a rerun trains only new seeds); ``--reuse OUT`` trains only stage 3
on an earlier run's store and stage-1/2 checkpoints, for stage-3 ablations (``--gate uniform``, ``--gate-balance``).
``bench/diagnose_fusion.py`` probes each part of a joint encoder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from topo.pipeline.sources import SOURCES, SourceEntry, register_source
from topo.pipeline.sources.synthetic_betti import SyntheticBettiSource

HEADS = {"proj_hidden_dim": 256, "proj_dim": 64}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--method", default="simclr")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--n-val", type=int, default=100)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--probe-max-iter", type=int, default=2000)
    p.add_argument("--gate-balance", type=float, default=0.0)
    p.add_argument("--gate", default="learned", choices=("learned", "uniform"))
    p.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="an earlier --out: its store, baseline rows and stage-1/2 checkpoints; only stage 3 is trained here "
        "(for stage-3 ablations: --gate, --gate-balance)",
    )
    p.add_argument("--num-workers", type=int, default=None, help="loader workers (default: the trainer's own choice)")
    p.add_argument("--out", type=Path, default=Path("bench/.repro-topocl"))
    return p.parse_args()


def _store(a: argparse.Namespace) -> Path:
    from topo.pipeline.calibrate.job import run_calibration
    from topo.pipeline.job import BuildConfig, build_store
    from topo.pipeline.ray_runtime import RayResources

    sizes = {"train": a.n_train, "val": a.n_val, "test": a.n_test}
    name = "synthetic-betti-bench"
    if name not in SOURCES:
        register_source(
            SourceEntry(name, lambda n, *, seed, size, **_: SyntheticBettiSource(seed=seed, size=size, sizes=sizes),
                        "bench copy of synthetic-betti", needs_data_dir=False)
        )  # fmt: skip
    out = a.out / "store.zarr"
    if not (out / "zarr.json").exists() and not out.exists():
        build_store(
            BuildConfig(dataset=name, out=out, size=a.size, roi="none", progress=False,
                        resources=RayResources(num_cpus=2))
        )  # fmt: skip
        run_calibration(out, samples=64, grid=(0.05, 0.15, 0.3, 0.6, 1.0), seed=0, progress=False, plot=False,
                        resources=RayResources(num_cpus=2))  # fmt: skip
    return out


def _cfg(a: argparse.Namespace, store: Path, out: Path, stage: str, seed: int, epochs: int, **kw):
    from topo.trainer.config import TrainConfig

    return TrainConfig(
        store=str(store), out_dir=str(out), method=a.method, stage=stage, backbone="resnet18", small_input=False,
        epochs=epochs, batch_size=a.batch_size, warmup_epochs=1, lr=2e-3, seed=seed, num_workers=a.num_workers,
        monitor_every=0, progress=False, log_every=5, checkpoint_every=0, topo_width=128, method_options=HEADS,
        gate_balance=a.gate_balance, gate=a.gate, **kw,
    )  # fmt: skip


def _probe(ck: Path, store: Path, seed: int, a: argparse.Namespace) -> tuple[float, float, np.ndarray]:
    from topo.trainer.eval.feature_cache import cached_features
    from topo.trainer.eval.probe import linear_probe

    sets, gates, _ = cached_features(ck, str(store))
    res = linear_probe(sets["train"], sets["val"], sets["test"], max_iter=a.probe_max_iter, num_classes=4)
    return float(res.test["acc"]), float(res.test["auc"]), gates


STAGES_1_2 = ("visual", "topo")


def _wall(checkpoint: Path) -> float:
    """A finished run's training wall time, from its summary (checkpoints/ sits beside summary.json)."""
    return float(json.loads((checkpoint.parent.parent / "summary.json").read_text())["wall_s"])


def _reused_row(reuse: Path, seed: int) -> dict:
    """The baseline half of an earlier run's row for ``seed``: the baseline does not change with stage 3."""
    rows = [json.loads(line) for line in (reuse / "rows.jsonl").read_text().splitlines() if line]
    match = [r for r in rows if r["seed"] == seed]
    if not match:
        raise SystemExit(f"{reuse / 'rows.jsonl'} has no row for seed {seed}: run that seed there first")
    return {k: match[0][k] for k in ("seed", "baseline_acc", "baseline_auc", "baseline_s")}


def main() -> None:
    import torch

    from topo.pipeline.cue_check import cue_check
    from topo.store_schema import open_store
    from topo.trainer.eval.stats import mean_std, paired_ttest
    from topo.trainer.train import train

    a = _args()
    torch.set_num_threads(2)
    store = a.reuse / "store.zarr" if a.reuse else _store(a)
    a.out.mkdir(parents=True, exist_ok=True)
    src = SyntheticBettiSource(seed=0, size=a.size, sizes={"train": a.n_train, "test": a.n_test})
    cue = cue_check(*src.arrays("train"), *src.arrays("test"))
    print("\n".join(cue.lines()), flush=True)
    done_file = a.out / "rows.jsonl"  # one row per finished seed: a rerun with more seeds trains only the new ones
    done = {}
    if done_file.exists():
        done = {(row := json.loads(line))["seed"]: row for line in done_file.read_text().splitlines() if line}
    rows = []
    for seed in a.seeds:
        if seed in done:
            rows.append(done[seed])
            continue
        r = a.out / "runs" / f"seed{seed}"
        if a.reuse:
            row = _reused_row(a.reuse, seed)
            vis_ck, topo_ck = (a.reuse / "runs" / f"seed{seed}" / s / "checkpoints" / "final.pt" for s in STAGES_1_2)
            t_stages_1_2 = sum(_wall(ck) for ck in (vis_ck, topo_ck))
        else:
            t0 = time.perf_counter()
            base = train(_cfg(a, store, r / "baseline", "visual", seed, 3 * a.epochs))
            t_base = time.perf_counter() - t0
            b_acc, b_auc, _ = _probe(base.checkpoint, store, seed, a)
            row = {"seed": seed, "baseline_acc": b_acc, "baseline_auc": b_auc, "baseline_s": t_base}
            t0 = time.perf_counter()
            vis_ck = train(_cfg(a, store, r / "visual", "visual", seed, a.epochs)).checkpoint
            topo_ck = train(_cfg(a, store, r / "topo", "topo", seed, a.epochs)).checkpoint
            t_stages_1_2 = time.perf_counter() - t0
        t0 = time.perf_counter()
        joint = train(_cfg(a, store, r / "joint", "joint", seed, a.epochs, init_visual=str(vis_ck),
                           init_topo=str(topo_ck)))  # fmt: skip
        t_stage3 = time.perf_counter() - t0
        t_acc, t_auc, gates = _probe(joint.checkpoint, store, seed, a)
        gate_mean = gates.mean(0).round(3).tolist() if gates.size else []
        row.update({"topocl_acc": t_acc, "topocl_auc": t_auc, "topocl_s": t_stages_1_2 + t_stage3,
                    "stage3_s": t_stage3, "gate_mean": gate_mean})  # fmt: skip
        rows.append(row)
        with done_file.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    names = list(open_store(store).class_names)
    acc_b, acc_t = [r["baseline_acc"] for r in rows], [r["topocl_acc"] for r in rows]
    auc_b, auc_t = [r["baseline_auc"] for r in rows], [r["topocl_auc"] for r in rows]
    lines = [
        f"synthetic-betti {a.size}², train/val/test {a.n_train}/{a.n_val}/{a.n_test}, classes {names}",
        f"{a.method}, ResNet-18, {a.epochs} epochs per TopoCL stage, baseline {3 * a.epochs} epochs, "
        f"batch {a.batch_size}, seeds {a.seeds}, gate {a.gate}, gate balance {a.gate_balance}"
        + (f", stages 1-2 and baseline reused from {a.reuse}" if a.reuse else ""),
        f"cue check: pixels {100 * cue.pixel_acc:.1f}, diagram features {100 * cue.pd_acc:.1f}",
    ]
    for label, b, t in (("ACC", acc_b, acc_t), ("AUC", auc_b, auc_t)):
        (mb, sb), (mt, st), tt = mean_std(b), mean_std(t), paired_ttest(b, t)
        lines.append(f"{label}: baseline {100 * mb:.1f} ± {100 * sb:.1f}, +TopoCL {100 * mt:.1f} ± {100 * st:.1f}, "
                     f"diff {100 * tt.mean_diff:+.1f}, paired t = {tt.t:.2f}, p = {tt.p:.3g}")  # fmt: skip
    lines.append("per seed: " + json.dumps(rows))
    (a.out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
