"""``topo eval``: features from frozen encoders, the honest linear probe, and the paper-shaped reports.

For each pretraining seed, TopoCL is the fused encoder (stage ``joint``) and the baseline the visual-only encoder
trained for as many epochs as TopoCL's visual encoder saw (stage 1 + stage 3); the stage-1-only encoder is an
extra, labelled row (:mod:`topo.trainer.eval.rows`). Features are cached beside each run, keyed by the checkpoint's
sha256, the store fingerprint and the extraction options (:mod:`topo.trainer.eval.feature_cache`); the probe's
regularisation is chosen on the validation split and the test split is evaluated once, after that choice
(:mod:`topo.trainer.eval.probe` enforces it). Rows trained on stores with different fingerprints are refused.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from topo.trainer.build import encoder_from_checkpoint
from topo.trainer.eval import report
from topo.trainer.eval.extract import batch_view
from topo.trainer.eval.feature_cache import cached_features
from topo.trainer.eval.knn import knn_accuracy
from topo.trainer.eval.probe import linear_probe
from topo.trainer.eval.report import RunResult
from topo.trainer.eval.report.probe_rows import probe_rows_markdown
from topo.trainer.eval.rows import Row, rows_for_seed


@dataclass
class EvalOutputs:
    """The run records and the report files written."""

    results: list[RunResult]
    markdown: Path
    json: Path
    figures: list[Path]


class MixedStoresError(ValueError):
    """The rows of one report were trained on stores with different fingerprints."""


def _probe_row(row: Row, store: str, num_classes: int, probe_max_iter: int, device: str) -> tuple[Any, Any, dict]:
    sets, gates, key = cached_features(row.checkpoint, store, device=device)
    res = linear_probe(sets["train"], sets["val"], sets["test"], max_iter=probe_max_iter, num_classes=num_classes)
    enc, _, ck = encoder_from_checkpoint(str(row.checkpoint))
    extras = {
        "row": row.label,
        "knn_val_acc": knn_accuracy(sets["train"], sets["val"], k=20),
        "checkpoint": str(row.checkpoint),
        "feature_cache_key": key,
        "trained_on_store": ck["store"]["fingerprint"],
        "budget": {**row.budget, "params": sum(p.numel() for p in enc.parameters())},
        "init": row.init,
    }
    return res, (sets, gates), extras


def _check_one_store(extras: list[dict[str, Any]]) -> None:
    seen = {e["trained_on_store"]: e["checkpoint"] for e in extras}
    if len(seen) > 1:
        listing = "; ".join(f"{fp[:19]}… ({ck})" for fp, ck in seen.items())
        raise MixedStoresError(f"refusing to compare runs trained on different stores: {listing}")


def evaluate(
    *,
    store: str,
    dataset: str,
    method: str,
    runs: Path,
    seeds: Sequence[int],
    variants: Sequence[str] = ("baseline", "topocl"),
    suffix: str | None = None,
    probe_max_iter: int = 2000,
    report_dir: Path,
    device: str = "cpu",
) -> EvalOutputs:
    """Probe the rows of every seed under ``runs/<method>/`` (see :mod:`topo.trainer.eval.rows`), write reports."""
    from topo.store_schema import open_store

    # The store first: a store this topo cannot read (another schema, a missing array, a failed root digest) is
    # the error to report, not the runs that could not be found or the features cached from it earlier.
    st = open_store(store)
    st.validate()
    class_names = st.class_names
    results: list[RunResult] = []
    extra_rows: list[RunResult] = []
    figures: list[Path] = []
    cost_rows: list[dict[str, Any]] = []
    missing: list[str] = []
    all_extras: list[dict[str, Any]] = []
    definitions: dict[str, str] = {}
    for seed in seeds:
        rows, lost = rows_for_seed(runs / method, seed, suffix, tuple(variants))
        missing += lost
        for row in rows:
            res, (sets, gates), extras = _probe_row(row, store, len(class_names), probe_max_iter, device)
            all_extras.append(extras)
            _check_one_store(all_extras)
            rec = report.run_result_from_probe(dataset, method, row.variant or "baseline", seed, res, extras=extras)
            (results if row.variant else extra_rows).append(rec)
            if row.variant == "topocl" and gates.size and seed == seeds[0]:
                figures.append(_gate_figure(row.checkpoint, gates, sets, class_names, report_dir, dataset, method))
            if seed == seeds[0]:
                cost_rows.append(_cost_row(row.checkpoint, row.label, store))
                definitions[row.label] = _views_of(row.checkpoint)
    if not results:
        expected = missing[0] if missing else str(runs / method)
        raise FileNotFoundError(
            f"no finished runs to evaluate; expected e.g. {expected} "
            f"(train with `topo train --method {method} --stage all --seed N`)"
        )
    report_dir.mkdir(parents=True, exist_ok=True)
    report.save_run_results(report_dir / f"results_{dataset}_{method}.json", results)
    if extra_rows:
        report.save_run_results(report_dir / f"extra_rows_{dataset}_{method}.json", extra_rows)
    table = report.build_table(results)
    md = report_dir / f"table3_{dataset}_{method}.md"
    text = report.to_markdown(table) + "\n\n" + probe_rows_markdown(results + extra_rows)
    if cost_rows:
        text += "\n\n" + report.cost_table_markdown(cost_rows, title="Cost (cf. the paper's Tables 6–7)")
    if definitions:
        text += "\n\nViews of each row:\n" + "\n".join(f"- **{v}**: {d}" for v, d in definitions.items())
    if missing:
        text += "\n\nRuns not found (not evaluated):\n" + "\n".join(f"- {m}" for m in missing)
    md.write_text(text + "\n")
    js = report_dir / f"table3_{dataset}_{method}.json"
    js.write_text(json.dumps(report.to_json(table), indent=1, allow_nan=False))
    return EvalOutputs(results, md, js, figures)


def _views_of(checkpoint: Path) -> str:
    from topo.trainer.checkpoint import load_checkpoint
    from topo.trainer.config import TrainConfig
    from topo.trainer.stage_views import view_definition

    return view_definition(TrainConfig.from_json(load_checkpoint(checkpoint)["config"]))


def _gate_figure(ck: Path, gates, sets, class_names, report_dir: Path, dataset: str, method: str) -> Path:
    from topo.trainer.models.fusion import EXPERTS

    enc, _, _ = encoder_from_checkpoint(str(ck))
    names = list(getattr(getattr(enc, "fusion", None), "experts", EXPERTS))
    out = report_dir / f"gate_weights_{dataset}_{method}.png"
    report.plot_gate_weights(
        gates,
        names,
        sets["test"].y,
        class_names,
        out_png=out,
        title=f"{dataset} · {method} · mean gate weight per expert (test split)",
    )
    return out


def _cost_row(checkpoint: Path, label: str, store: str) -> dict[str, Any]:
    """Parameters, FLOPs per sample, and the training throughput logged by the run."""
    enc, cfg, ck = encoder_from_checkpoint(str(checkpoint))
    from topo.trainer.data import StoreDataset

    ds = StoreDataset(store, splits="val", batch_size=2, shuffle=False, drop_last=False, rank=0, world_size=1)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    view = batch_view(batch, cfg.stage, cfg.image_size or ck["geometry"]["height"], torch.device("cpu"))
    cost = report.model_cost(enc, (view,))
    rate = logged_throughput(checkpoint.parent.parent / "log.csv")
    return {"name": f"{label} ({cfg.backbone}, {cfg.stage})", **cost, "throughput_img_s": rate}


def logged_throughput(log: Path) -> float | None:
    """The last ``samples_per_s`` a run logged, read by column name.

    The joint stage appends gate columns after the step columns, so "the last column" is a gate statistic there.
    """
    if not log.exists():
        return None
    with log.open(newline="") as f:
        rates = [row["samples_per_s"] for row in csv.DictReader(f) if row.get("samples_per_s")]
    return float(rates[-1]) if rates else None
