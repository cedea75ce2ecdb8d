"""``topo eval``: features from frozen encoders, the honest linear probe, and the paper-shaped reports.

For each pretraining seed, the baseline is the visual-only encoder (stage ``visual``) and TopoCL is the fused
encoder (stage ``joint``) trained with the same method. Features are extracted once per split and cached beside the
checkpoint; the probe's learning rate and weight decay are chosen on the validation split; the test split is
evaluated once, after that choice (:mod:`topo.trainer.eval.probe` enforces it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topo.trainer.build import encoder_from_checkpoint
from topo.trainer.eval.extract import batch_view, extract_features
from topo.trainer.eval.features import FeatureSet, load_features, save_features
from topo.trainer.eval.knn import knn_accuracy
from topo.trainer.eval.probe import linear_probe
from topo.trainer.eval.report import (
    RunResult,
    build_table,
    cost_table_markdown,
    model_cost,
    plot_gate_weights,
    run_result_from_probe,
    save_run_results,
    to_json,
    to_markdown,
)

VARIANT_STAGE = {"baseline": "visual", "topocl": "joint"}
SPLITS = ("train", "val", "test")


@dataclass
class EvalOutputs:
    """The run records and the report files written."""

    results: list[RunResult]
    markdown: Path
    json: Path
    figures: list[Path]


def cached_features(checkpoint: Path, store: str, *, device: str = "cpu") -> tuple[dict[str, FeatureSet], np.ndarray]:
    """Features of every split (cached in ``<run>/features``) and the TopoCL gate weights of the test split."""
    cache = checkpoint.parent.parent / "features"
    gates_file = cache / "gate_weights_test.npy"
    if (cache / "features.json").exists():
        gates = np.load(gates_file, allow_pickle=False) if gates_file.exists() else np.zeros((0, 0), np.float32)
        return load_features(cache), gates
    enc, cfg, ck = encoder_from_checkpoint(str(checkpoint))
    size = cfg.image_size or ck["geometry"]["height"]
    sets: dict[str, FeatureSet] = {}
    gates = np.zeros((0, 0), np.float32)
    for split in SPLITS:
        fs = extract_features(
            enc,
            store,
            split,
            stage=cfg.stage,
            image_size=size,
            device=device,
            gate_weights=split == "test",
            full_image=cfg.topo_views == "full_image",
        )
        if isinstance(fs, tuple):
            fs, gates = fs
        sets[split] = fs
    save_features(cache, sets, meta={"checkpoint": checkpoint.name, "stage": cfg.stage}, overwrite=True)
    if gates.size:
        np.save(gates_file, gates)
    return sets, gates


def evaluate(
    *,
    store: str,
    dataset: str,
    method: str,
    runs: Path,
    seeds: Sequence[int],
    variants: Sequence[str] = ("baseline", "topocl"),
    probe_epochs: int = 100,
    report_dir: Path,
    device: str = "cpu",
) -> EvalOutputs:
    """Probe every (variant, seed) run under ``runs/<method>/<stage>-seed<seed>/`` and write the reports."""
    from topo.store_schema import open_store

    class_names = open_store(store).class_names
    results: list[RunResult] = []
    figures: list[Path] = []
    cost_rows: list[dict[str, Any]] = []
    missing = []
    definitions: dict[str, str] = {}
    for variant in variants:
        for seed in seeds:
            ck = runs / method / f"{VARIANT_STAGE[variant]}-seed{seed}" / "checkpoints" / "final.pt"
            if not ck.exists():
                missing.append(str(ck))
                continue
            sets, gates = cached_features(ck, store, device=device)
            res = linear_probe(
                sets["train"], sets["val"], sets["test"], epochs=probe_epochs, seed=seed, num_classes=len(class_names)
            )
            knn = knn_accuracy(sets["train"], sets["val"], k=20)
            results.append(
                run_result_from_probe(
                    dataset, method, variant, seed, res, extras={"knn_val_acc": knn, "checkpoint": str(ck)}
                )
            )
            if variant == "topocl" and gates.size and seed == seeds[0]:
                from topo.trainer.models.fusion import EXPERTS

                enc, _, _ = encoder_from_checkpoint(str(ck))
                names = list(getattr(getattr(enc, "fusion", None), "experts", EXPERTS))
                out = report_dir / f"gate_weights_{dataset}_{method}.png"
                plot_gate_weights(
                    gates,
                    names,
                    sets["test"].y,
                    class_names,
                    out_png=out,
                    title=f"{dataset} · {method} · mean gate weight per expert (test split)",
                )
                figures.append(out)
            if seed == seeds[0]:
                cost_rows.append(_cost_row(ck, variant, store))
                definitions[variant] = _views_of(ck)
    if missing and not results:
        raise FileNotFoundError(
            "no finished runs to evaluate; expected e.g. "
            + missing[0]
            + f" (train with `topo train --method {method} --stage all --seed N`)"
        )
    report_dir.mkdir(parents=True, exist_ok=True)
    save_run_results(report_dir / f"results_{dataset}_{method}.json", results)
    table = build_table(results)
    md = report_dir / f"table3_{dataset}_{method}.md"
    text = to_markdown(table)
    if cost_rows:
        text += "\n\n" + cost_table_markdown(cost_rows, title="Cost (cf. the paper's Tables 6–7)")
    if definitions:
        text += "\n\nViews of each row:\n" + "\n".join(f"- **{v}**: {d}" for v, d in definitions.items())
    if missing:
        text += "\n\nRuns not found (not evaluated):\n" + "\n".join(f"- {m}" for m in missing)
    md.write_text(text + "\n")
    js = report_dir / f"table3_{dataset}_{method}.json"
    js.write_text(json.dumps(to_json(table), indent=1, allow_nan=False))
    return EvalOutputs(results, md, js, figures)


def _views_of(checkpoint: Path) -> str:
    from topo.trainer.checkpoint import load_checkpoint
    from topo.trainer.config import TrainConfig
    from topo.trainer.stage_views import view_definition

    return view_definition(TrainConfig.from_json(load_checkpoint(checkpoint)["config"]))


def _cost_row(checkpoint: Path, variant: str, store: str) -> dict[str, Any]:
    """Parameters, FLOPs per sample, and the training throughput logged by the run."""
    enc, cfg, ck = encoder_from_checkpoint(str(checkpoint))
    from topo.trainer.data import StoreDataset

    ds = StoreDataset(store, splits="val", batch_size=2, shuffle=False, drop_last=False, rank=0, world_size=1)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    view = batch_view(batch, cfg.stage, cfg.image_size or ck["geometry"]["height"], torch.device("cpu"))
    cost = model_cost(enc, (view,))
    log = checkpoint.parent.parent / "log.csv"
    rate = None
    if log.exists():
        rows = [r.split(",") for r in log.read_text().splitlines()[1:] if r]
        rate = float(rows[-1][-1]) if rows else None
    return {"name": f"{variant} ({cfg.backbone}, {cfg.stage})", **cost, "throughput_img_s": rate}
