"""``topo train`` options for run bookkeeping and the stage chain's console output (the chain: trainer/stages.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

InitVisualOpt = Annotated[
    str | None,
    typer.Option(help="--stage joint: stage-1 run (folder, run name or checkpoint) or none (random). Required."),
]
InitTopoOpt = Annotated[
    str | None,
    typer.Option(help="--stage joint: stage-2 run (folder, run name or checkpoint) or none (random). Required."),
]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace the run already in the run folder (else refused).")]
ComputeMatchedOpt = Annotated[
    bool,
    typer.Option(help="--stage all: also train a visual-only baseline for stage-1 + stage-3 epochs."),
]


def train_all_stages(
    stage: str,
    common: dict[str, Any],
    runs: Path,
    *,
    out: Console,
    err: Console,
    **options: Any,
) -> None:
    """Run the stage chain and print one line per finished stage (main process only)."""
    from topo.trainer.dist import is_main_process
    from topo.trainer.stages import StageRun, run_stages

    def report(item: StageRun) -> None:
        if not is_main_process():
            return
        res = item.result
        mon = ", ".join(f"{k} {v:.3f}" for k, v in res.monitors.items())
        out.print(
            f"[bold]{item.label}[/] ({item.cfg.epochs} epochs): {res.steps} steps in {res.seconds:.0f} s "
            f"({res.samples_per_s:.0f} img/s), loss {res.final_loss:.4f}{'; val ' + mon if mon else ''} "
            f"→ {res.checkpoint}"
        )

    run_stages(stage, common, runs, console=err, on_done=report, **options)


VisualAugOpt = Annotated[
    str,
    typer.Option(help="Visual view recipe: byol (blur + solarise, asymmetric) or simclr (crop, flip, jitter, noise)."),
]
CropScaleOpt = Annotated[str, typer.Option(help="Random-resized-crop area fraction MIN,MAX.")]
LrScheduleOpt = Annotated[str, typer.Option(help="After warm-up: cosine (decay to 0) or constant.")]


def parse_crop_scale(text: str) -> tuple[float, float]:
    """``"0.2,1.0"`` → ``(0.2, 1.0)``; a clear error otherwise."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--crop-scale takes MIN,MAX (e.g. 0.2,1.0), got {text!r}") from None
    return lo, hi
