"""Which runs a report compares, and what each one cost.

For one pretraining seed the rows are found from the run names (:func:`topo.trainer.config.run_name`):

* ``topocl``: ``joint-seed<S><suffix>``; its checkpoint names the stage-1 / stage-2 runs it started from
  (``none`` when it started from random encoders);
* ``baseline``: the *compute-matched* visual-only run, whose encoder trained for stage-1 + stage-3 epochs
  (``visual-seed<S>-e<N>…``); when it is missing, the stage-1 run stands in, labelled as not compute-matched;
* ``stage-1 only``: the stage-1 run as an extra, labelled row (not in the paired table).

Each row carries its budget: epochs per stage, images the visual encoder saw, wall time and parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topo.trainer.config import TrainConfig, run_name
from topo.trainer.stages import matched_epochs
from topo.trainer.train import FINAL
from topo.trainer.train_logs import SUMMARY

MATCHED, STAGE1, TOPOCL = "baseline (compute-matched)", "stage-1 only", "TopoCL"


@dataclass
class Row:
    """One evaluated run: its variant for the paired table (``None`` for extra rows), label and checkpoint."""

    variant: str | None
    label: str
    checkpoint: Path
    budget: dict[str, Any] = field(default_factory=dict)
    init: dict[str, str] = field(default_factory=dict)


def _config(ck_path: Path) -> TrainConfig | None:
    f = ck_path.parent.parent / "config.json"
    return TrainConfig.from_json(json.loads(f.read_text())) if f.exists() else None


def _summary(run: Path) -> dict[str, Any]:
    f = run / SUMMARY
    return json.loads(f.read_text()) if f.exists() else {}


def matched_name(visual: TrainConfig, epochs: int) -> str:
    """Run name of the visual-only baseline trained for ``epochs`` (stage 1 + stage 3) with the same options."""
    d = {**visual.to_json(), "stage": "visual", "epochs": epochs}
    d.update(init_visual=None, init_topo=None)
    return run_name(TrainConfig.from_json(d))


def _budget(stages: dict[str, Path]) -> dict[str, Any]:
    """Epochs per stage, images seen by the visual encoder (stages visual and joint) and total wall time."""
    epochs, seen, wall = {}, 0, 0.0
    for stage, run in stages.items():
        s = _summary(run)
        cfg = _config(run / FINAL)
        epochs[stage] = cfg.epochs if cfg else None
        if stage in ("visual", "joint"):
            seen += int(s.get("images_seen", 0))
        wall += float(s.get("wall_s", 0.0))
    return {"epochs_per_stage": epochs, "images_seen": seen or None, "wall_s": wall or None}


def resolve_suffix(runs: Path, seed: int, suffix: str | None) -> str:
    """The run-name suffix to evaluate: the one given, else the only one of this seed's joint (or visual) runs.

    Several candidates are refused with their names, so an ablation is never picked silently.
    """
    if suffix is not None:
        return suffix
    for stage in ("joint", "visual"):
        names = sorted(p.name for p in runs.glob(f"{stage}-seed{seed}*") if (p / FINAL).exists())
        names = [n for n in names if n == f"{stage}-seed{seed}" or n.startswith(f"{stage}-seed{seed}-")]
        if len(names) == 1:
            return names[0].removeprefix(f"{stage}-seed{seed}").removeprefix("-")
        if names:
            raise ValueError(
                f"several {stage} runs for seed {seed} in {runs}: {', '.join(names)}; choose with --suffix"
            )
    return ""


def rows_for_seed(runs: Path, seed: int, suffix: str | None, variants: tuple[str, ...]) -> tuple[list[Row], list[str]]:
    """The rows of one seed and the checkpoints that were expected but not found."""
    suffix = resolve_suffix(runs, seed, suffix)
    sfx = f"-{suffix}" if suffix else ""
    joint_ck = runs / f"joint-seed{seed}{sfx}" / FINAL
    joint = _config(joint_ck) if joint_ck.exists() else None
    stage1_ck = Path(joint.init_visual) if joint and joint.init_visual else runs / f"visual-seed{seed}{sfx}" / FINAL
    rows: list[Row] = []
    missing: list[str] = []
    if "topocl" in variants:
        if joint is None:
            missing.append(str(joint_ck))
        else:
            stages = {
                st: Path(p).parent.parent for st, p in (("visual", joint.init_visual), ("topo", joint.init_topo)) if p
            }
            stages["joint"] = joint_ck.parent.parent
            init = {"visual": joint.init_visual or "none", "topo": joint.init_topo or "none"}
            rows.append(Row("topocl", TOPOCL, joint_ck, _budget(stages), init))
    if "baseline" not in variants:
        return rows, missing
    stage1 = _config(stage1_ck) if stage1_ck.exists() else None
    matched_ck = None
    if joint is not None:
        base = stage1 or TrainConfig.from_json({**joint.to_json(), "stage": "visual"})
        v_epochs = stage1.epochs if stage1 is not None and joint.init_visual else None
        matched_ck = runs / matched_name(base, matched_epochs(v_epochs, joint.epochs)) / FINAL
    if matched_ck is not None and matched_ck.exists():
        rows.append(Row("baseline", MATCHED, matched_ck, _budget({"visual": matched_ck.parent.parent})))
        if stage1 is not None:
            rows.append(Row(None, STAGE1, stage1_ck, _budget({"visual": stage1_ck.parent.parent})))
    elif stage1 is not None:
        label = STAGE1 + (" (NOT compute-matched: the matched run is missing)" if joint is not None else "")
        rows.append(Row("baseline", label, stage1_ck, _budget({"visual": stage1_ck.parent.parent})))
        if matched_ck is not None:
            missing.append(str(matched_ck))
    else:
        missing.append(str(stage1_ck))
    return rows, missing
