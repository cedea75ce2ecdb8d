"""`topo train`: options, the run folders, and the call into the stage schedule."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from topo.cli.common import DatasetOpt, StoreOpt, Workspace, err, error_line, fail, out, run_key, store_arg
from topo.cli.defaults import config_defaults
from topo.cli.options import backbone_problem
from topo.cli.train_stages import (
    ComputeMatchedOpt,
    CropScaleOpt,
    InitTopoOpt,
    InitVisualOpt,
    LrScheduleOpt,
    OverwriteOpt,
    VisualAugOpt,
    parse_crop_scale,
    train_all_stages,
)
from topo.cli.workspace import (
    workspace_root,
)
from topo.trainer.config import TrainConfig

# Defaults come from TrainConfig; the options below never restate them (`--stage` defaults to all three).
TRAIN = config_defaults(TrainConfig)


def _parse_options(items: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            fail(f"--method-option expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            opts[k] = json.loads(v)
        except json.JSONDecodeError:
            opts[k] = v
    return opts


def train_cmd(
    method: Annotated[str, typer.Option(help="simclr, mocov3, byol, dino or barlow.")] = TRAIN.method,
    stage: Annotated[str, typer.Option(help="visual (stage 1), topo (2), joint (3) or all (1 → 2 → 3).")] = "all",
    store: StoreOpt = None,
    dataset: DatasetOpt = None,
    backbone: Annotated[
        str, typer.Option(help="timm model name (resnet50 as in the paper; resnet18 on CPU).")
    ] = TRAIN.backbone,
    epochs: Annotated[int, typer.Option(help="Epochs per stage.")] = TRAIN.epochs,
    batch_size: Annotated[int, typer.Option(help="Global batch size.")] = TRAIN.batch_size,
    lr: Annotated[float, typer.Option(help="AdamW learning rate per 256 samples (scaled with the batch).")] = TRAIN.lr,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = TRAIN.weight_decay,
    warmup_epochs: Annotated[
        float | None, typer.Option(help="Linear warm-up epochs (default: 10 % of --epochs).")
    ] = TRAIN.warmup_epochs,
    lr_schedule: LrScheduleOpt = TRAIN.lr_schedule,
    visual_aug: VisualAugOpt = TRAIN.visual_aug,
    crop_scale: CropScaleOpt = ",".join(f"{v:g}" for v in TRAIN.crop_scale),
    seed: Annotated[int, typer.Option(help="Pretraining seed.")] = TRAIN.seed,
    image_size: Annotated[
        int | None, typer.Option(help="Training resolution (default: the store's).")
    ] = TRAIN.image_size,
    small_input: Annotated[
        bool | None, typer.Option(help="3×3 stem without max-pool (default: on for ≤ 64²).")
    ] = TRAIN.small_input,
    num_workers: Annotated[
        int | None,
        typer.Option(
            help="DataLoader workers (default: none for the visual stage, whose batches are read ahead on threads; "
            "2 for the topology stages, whose views are computed in them)."
        ),
    ] = TRAIN.num_workers,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = TRAIN.device,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop each stage after N steps (short runs).")
    ] = TRAIN.max_steps,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = TRAIN.checkpoint_every,
    monitor_every: Annotated[
        int, typer.Option(help="Epochs between kNN/online-probe checks on val (0: never).")
    ] = TRAIN.monitor_every,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint of the same configuration.")] = False,
    pairing: Annotated[str, typer.Option(help="weak+strong, weak+weak, strong+strong or standard.")] = TRAIN.pairing,
    topo_views: Annotated[
        str, typer.Option(help="online, precomputed or full_image diagrams of the views.")
    ] = TRAIN.topo_views,
    stage3_views: Annotated[
        str, typer.Option(help="Joint stage views: topo (the paper's) or standard+topo (ablation: stacked).")
    ] = TRAIN.stage3_views,
    intensities: Annotated[
        str, typer.Option(help="per-op (each operator its own calibrated range) or shared (ablation).")
    ] = TRAIN.intensities,
    gate: Annotated[str, typer.Option(help="MoE gate: learned (the paper's) or uniform (ablation).")] = TRAIN.gate,
    gate_balance: Annotated[
        float, typer.Option(help="λ of the CV² expert-importance loss (Shazeer et al. 2017; the paper: 0).")
    ] = TRAIN.gate_balance,
    topo_width: Annotated[int, typer.Option(help="Topology encoder width (the paper: 384).")] = TRAIN.topo_width,
    self_attention: Annotated[
        bool, typer.Option(help="Topology encoder self-attention (ablation: off).")
    ] = TRAIN.self_attention,
    cross_attention: Annotated[
        bool, typer.Option(help="Topology encoder cross-attention (ablation: off).")
    ] = TRAIN.cross_attention,
    hierarchical: Annotated[
        bool, typer.Option(help="Both attentions (ablation: off = MLP + pooling).")
    ] = TRAIN.hierarchical,
    topo_pooling: Annotated[
        str, typer.Option(help="Topology set pooling: max+mean (the paper's) or max+mean+sum (count-aware ablation).")
    ] = TRAIN.topo_pooling,
    experts: Annotated[str, typer.Option(help="MoE experts to keep.")] = ",".join(TRAIN.experts),
    visual_pretrain: Annotated[bool, typer.Option(help="--stage all: initialise the joint stage from stage 1.")] = True,
    topo_pretrain: Annotated[bool, typer.Option(help="--stage all: initialise the joint stage from stage 2.")] = True,
    init_visual: InitVisualOpt = TRAIN.init_visual,
    init_topo: InitTopoOpt = TRAIN.init_topo,
    compute_matched: ComputeMatchedOpt = True,
    overwrite: OverwriteOpt = False,
    method_option: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE for the method's config (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = TRAIN.progress,
    verify_chunks: Annotated[
        bool,
        typer.Option(help="Check every chunk read against the store's checksums (first read per process)."),
    ] = TRAIN.verify_chunks,
    workspace: Workspace = None,
) -> None:
    """Contrastive pretraining from a store: stage 1 visual, stage 2 topology encoder, stage 3 MoE fusion."""
    from topo.pipeline.sources import SourceError  # noqa: F401 - keeps import errors of optional deps early
    from topo.store_schema import StoreError
    from topo.trainer.checkpoint import CheckpointError
    from topo.trainer.run_folder import RunFolderError

    if (problem := backbone_problem(backbone)) is not None:
        fail(problem)
    ws = workspace_root(workspace)
    target = store_arg(store, dataset, workspace)
    key = run_key(target)
    common: dict[str, Any] = dict(
        store=target,
        method=method,
        backbone=backbone,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        lr_schedule=lr_schedule,
        visual_aug=visual_aug,
        seed=seed,
        image_size=image_size,
        small_input=small_input,
        num_workers=num_workers,
        device=device,
        max_steps=max_steps,
        checkpoint_every=checkpoint_every,
        monitor_every=monitor_every,
        pairing=pairing,
        topo_views=topo_views,
        stage3_views=stage3_views,
        intensities=intensities,
        gate=gate,
        gate_balance=gate_balance,
        topo_width=topo_width,
        self_attention=self_attention,
        cross_attention=cross_attention,
        hierarchical=hierarchical,
        topo_pooling=topo_pooling,
        experts=tuple(e.strip() for e in experts.split(",") if e.strip()),
        method_options=_parse_options(method_option or []),
        progress=progress,
        verify_chunks=verify_chunks,
    )
    try:
        common["crop_scale"] = parse_crop_scale(crop_scale)
        train_all_stages(
            stage,
            common,
            ws / "runs" / key / method,
            out=out,
            err=err,
            init_visual=init_visual,
            init_topo=init_topo,
            visual_pretrain=visual_pretrain,
            topo_pretrain=topo_pretrain,
            compute_matched=compute_matched,
            resume=resume,
            overwrite=overwrite,
        )
    except (StoreError, CheckpointError, RunFolderError, ValueError, FileNotFoundError) as e:
        fail(error_line(e))
