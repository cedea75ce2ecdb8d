"""The stage chain of ``topo train``: stage 1 (visual), 2 (topology), 3 (joint), and the compute-matched baseline.

Every stage trains into ``<runs>/<run_name(cfg)>`` (method folder given by the caller), so runs with other options
never share a folder. ``--stage all`` initialises the joint stage from the stage-1 / stage-2 runs it just trained
and, by default, then trains a visual-only baseline for stage-1 + stage-3 epochs, so that the baseline's visual
encoder sees as many epochs and images as TopoCL's. ``--stage joint`` alone must be told where its encoders start
(a run, or ``none`` for random), so it never silently starts from random weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from topo.trainer.config import TrainConfig, run_name
from topo.trainer.train import FINAL, TrainResult, train

NONE = "none"


@dataclass
class StageRun:
    """One trained stage: a label for the console, its config and its result."""

    label: str
    cfg: TrainConfig
    result: TrainResult


def resolve_init(value: str | None, runs: Path, option: str) -> str | None:
    """``none`` → ``None``; a run folder, a run name under ``runs`` or a checkpoint file → that checkpoint."""
    if value is None:
        raise ValueError(
            "--stage joint needs --init-visual RUN|none and --init-topo RUN|none (a run folder, a run name such as "
            f"visual-seed0, or a checkpoint; none starts from random weights); {option} is missing"
        )
    if value.strip().lower() == NONE:
        return None
    for cand in (Path(value), Path(value) / FINAL, runs / value / FINAL):
        if cand.is_file():
            return str(cand)
    raise ValueError(f"{option} {value!r}: no checkpoint there (looked for {value}, {value}/{FINAL}, {runs / value})")


def stage_config(common: dict[str, Any], runs: Path, stage: str, **extra: Any) -> TrainConfig:
    """The config of one stage, with ``out_dir`` = ``runs/<run_name>``."""
    cfg = TrainConfig(out_dir="", stage=stage, **{**common, **extra})
    cfg.out_dir = str(runs / run_name(cfg))
    return cfg


def matched_epochs(visual_epochs: int | None, joint_epochs: int) -> int:
    """Epochs of the compute-matched baseline: what TopoCL's visual encoder trained for (stage 1 if used + 3)."""
    return (visual_epochs or 0) + joint_epochs


def run_stages(
    stage: str,
    common: dict[str, Any],
    runs: Path,
    *,
    init_visual: str | None = None,
    init_topo: str | None = None,
    visual_pretrain: bool = True,
    topo_pretrain: bool = True,
    compute_matched: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    console: Console | None = None,
    on_done: Callable[[StageRun], None] | None = None,
) -> list[StageRun]:
    """Train ``stage`` (``visual``, ``topo``, ``joint`` or ``all``) into ``runs``; returns the trained stages."""
    if stage not in ("visual", "topo", "joint", "all"):
        raise ValueError(f"unknown stage {stage!r}; valid: visual, topo, joint, all")
    plans: list[tuple[str, str, dict[str, Any]]] = []
    if stage == "joint":
        iv = resolve_init(init_visual, runs, "--init-visual")
        it = resolve_init(init_topo, runs, "--init-topo")
        plans.append(("joint", "joint", {"init_visual": iv, "init_topo": it}))
    elif stage == "all":
        plans += [("visual", "visual", {}), ("topo", "topo", {}), ("joint", "joint", {})]
    else:
        plans.append((stage, stage, {}))
    done: list[StageRun] = []
    finals: dict[str, str] = {}

    def run_one(label: str, st: str, extra: dict[str, Any]) -> None:
        cfg = stage_config(common, runs, st, **extra)
        res = train(cfg, resume=resume, overwrite=overwrite, console=console)
        finals[label] = str(res.checkpoint)
        item = StageRun(label, cfg, res)
        done.append(item)
        if on_done is not None:
            on_done(item)

    for label, st, extra in plans:
        if label == "joint" and stage == "all":
            extra = {
                "init_visual": finals["visual"] if visual_pretrain else None,
                "init_topo": finals["topo"] if topo_pretrain else None,
            }
        run_one(label, st, extra)
    if stage == "all" and compute_matched:
        epochs = matched_epochs(common.get("epochs", 100) if visual_pretrain else None, common.get("epochs", 100))
        if epochs != done[0].cfg.epochs:  # otherwise the stage-1 run already is the matched one
            run_one("baseline (compute-matched)", "visual", {"epochs": epochs})
    return done
