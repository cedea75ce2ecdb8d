"""One training stage, start to finish: set-up (data, model, optimiser, resume), the epoch loop, finalisation.

Reads top to bottom in the order things happen; the logs are closed in ``finally`` whatever stops the loop. A
checkpoint is a plain dict holding the model, optimiser, scheduler and loader states, the config, the store's
identity and the step; ``resume`` continues from it only when the configuration and the store match.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from topo.store_schema import open_store
from topo.store_schema.filtration import FiltrationSpec
from topo.trainer.build import build_backbone
from topo.trainer.checkpoint import (
    CheckpointError,
    check_store_compatible,
    load_checkpoint,
    save_checkpoint,
    store_identity,
)
from topo.trainer.config import TrainConfig, config_hash, run_name
from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.dist import get_rank, get_world_size, is_main_process
from topo.trainer.eval.extract import DIAGRAM_KEYS, extract_features
from topo.trainer.gate_monitor import GateStats, importance_loss
from topo.trainer.methods import build_method
from topo.trainer.models.fusion import FusedEncoder
from topo.trainer.run_folder import claim_run_folder
from topo.trainer.stage_views import make_views, view_definition
from topo.trainer.topo_views import NoCalibratedBandError, TopoViews
from topo.trainer.train_logs import RunLogs, write_summary

LAST, FINAL = "checkpoints/last.pt", "checkpoints/final.pt"


@dataclass
class TrainResult:
    """Where a stage's checkpoint went, how far it got, how fast, and the last monitors."""

    out_dir: Path
    checkpoint: Path
    steps: int
    epochs_done: float
    seconds: float
    samples_per_s: float
    final_loss: float
    monitors: dict[str, float]


def loader_workers(requested: int | None, *, per_sample_views: bool) -> int:
    """DataLoader workers for a stage: what was asked, else none for whole batches and 2 for per-sample views.

    Whole batches are read ahead on threads in the training process; moving them between processes would cost more
    than reading them (bench/RESULTS.md, loader). Topology views are computed per sample, which workers parallelise.
    """
    if requested is not None:
        return requested
    return 2 if per_sample_views else 0


def _setup_distributed(cfg: TrainConfig) -> torch.device:
    """Torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo"
        dist.init_process_group(backend)
    if cfg.device != "auto":
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def check_full_image_calibration(store: Any) -> None:
    """``--topo-views full_image`` needs ranges calibrated on whole-image diagrams (Table 4 (b)), not ROI ones."""
    from topo.store_schema.calibration import calibrate_hint, calibrated_on_full_image

    if not calibrated_on_full_image(store):
        raise ValueError(
            "--topo-views full_image needs a whole-image calibration (this store's ranges were calibrated on ROI "
            f"diagrams): run {calibrate_hint(store, full_image=True)}"
        )


def lr_lambda(warmup_steps: int, total_steps: int, schedule: str = "cosine"):
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


@dataclass
class _Run:
    """Everything one stage holds while it trains (built by :func:`_set_up`, advanced by :func:`_epoch_loop`)."""

    cfg: TrainConfig
    device: torch.device
    world: int
    store: Any
    size: int
    spec: FiltrationSpec
    dataset: StoreDataset
    workers: int
    steps_per_epoch: int
    total_steps: int
    method: Any
    model: nn.Module
    probe: nn.Linear
    optimizer: torch.optim.Optimizer
    scheduler: Any
    probe_opt: torch.optim.Optimizer
    gates: GateStats | None
    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    samples: int = 0
    last_loss: float = float("nan")
    samples_per_s: float = 0.0
    monitors: dict[str, float] = field(default_factory=dict)

    def checkpoint(self, path: Path) -> None:
        if not is_main_process():
            return
        save_checkpoint(
            path,
            {
                "model": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "probe": self.probe.state_dict(),
                "probe_optimizer": self.probe_opt.state_dict(),
                "loader": {"epoch": self.epoch, "batches_done": self.batches_done},
                "step": self.step,
                "config": self.cfg.to_json(),
                "store": store_identity(self.store),
                "geometry": self.store.geometry.to_json(),
                "class_names": self.store.class_names,
            },
        )


def _data(cfg: TrainConfig, store: Any, spec: FiltrationSpec, local_batch: int, rank: int, world: int) -> StoreDataset:
    """The train split, with topology-aware views made per sample for the topology branch."""
    transform = None
    if cfg.stage in ("topo", "joint"):
        from topo.store_schema.calibration import calibrate_hint, load_ranges

        ranges = load_ranges(store) if cfg.pairing != "standard" else {}
        if cfg.topo_views == "full_image" and cfg.pairing != "standard":
            check_full_image_calibration(store)
        try:
            transform = TopoViews(
                ranges, spec, pairing=cfg.pairing, mode=cfg.topo_views, seed=cfg.seed, intensities=cfg.intensities
            )
        except NoCalibratedBandError as e:
            hint = calibrate_hint(store, grid=16)
            raise NoCalibratedBandError(f"{e}; or recalibrate with more intensities: {hint}") from None
    keys = ["index", "label"] + (["image"] if cfg.stage == "visual" else ["image", "roi_mask", *DIAGRAM_KEYS])
    return StoreDataset(
        cfg.store,
        splits="train",
        batch_size=local_batch,
        seed=cfg.seed,
        drop_last=True,
        rank=rank,
        world_size=world,
        transform=transform,
        keys=keys,
        collate=True,
        verify_chunks=cfg.verify_chunks,
    )


def _set_up(cfg: TrainConfig, resume: bool, console: Console) -> _Run:
    """Processes, device, seeds, data, model, optimiser and schedule, then the resumed state if asked."""
    device = _setup_distributed(cfg)
    rank, world = get_rank(), get_world_size()
    torch.manual_seed(cfg.seed)
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the world size {world}")
    local_batch = cfg.batch_size // world
    store = open_store(cfg.store)
    store.validate()
    spec = FiltrationSpec.from_json(store.persistence_spec)
    dataset = _data(cfg, store, spec, local_batch, rank, world)
    steps_per_epoch = dataset.num_batches()
    if steps_per_epoch == 0:
        raise ValueError(f"the train split has fewer samples than one batch of {local_batch} per rank")
    total_steps = cfg.epochs * steps_per_epoch

    for init in (cfg.init_visual, cfg.init_topo):
        if init:  # stages 1 and 2 may have run on another copy of the data, never on another kind of store
            check_store_compatible(load_checkpoint(init)["store"], store, same_data=False)
    backbone = build_backbone(cfg, store.geometry)
    method = build_method(cfg.method, backbone, backbone.feat_dim, **cfg.method_options).to(device)
    gates = None
    if isinstance(backbone, FusedEncoder):  # record the online gate from here on (momentum copies exist already)
        backbone.take_gate_weights()
        gates = GateStats(backbone.fusion.experts)
    model: nn.Module = method
    if world > 1:
        if device.type == "cuda":  # BatchNorm statistics shared across ranks, as the methods' papers train them
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    probe = nn.Linear(backbone.feat_dim, len(store.class_names)).to(device)  # online monitor on detached features

    # AdamW, linear warm-up, cosine; lr scaled with the global batch.
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr * cfg.batch_size / 256, weight_decay=cfg.weight_decay)
    warmup = min(total_steps, int(cfg.warmup * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total_steps, cfg.lr_schedule))
    probe_opt = torch.optim.AdamW(probe.parameters(), lr=1e-3, weight_decay=0.0)
    run = _Run(
        cfg, device, world, store, cfg.image_size or store.geometry.height, spec, dataset,
        loader_workers(cfg.num_workers, per_sample_views=dataset.transform is not None), steps_per_epoch,
        total_steps, method, model, probe, optimizer, scheduler, probe_opt, gates,
    )  # fmt: skip
    _resume(run, resume, console)
    return run


def _resume(run: _Run, resume: bool, console: Console) -> None:
    """Continue from ``last.pt``: only the same configuration on the same store."""
    last = Path(run.cfg.out_dir) / LAST
    if resume and last.exists():
        ck = load_checkpoint(last)
        diff = run.cfg.differences(ck["config"])
        if diff:
            raise CheckpointError(
                f"{last} was trained with another configuration (differs in: {', '.join(diff)}); "
                "start a new run directory or drop --resume"
            )
        check_store_compatible(ck["store"], run.store, same_data=True)
        run.method.load_state_dict(ck["model"])
        run.optimizer.load_state_dict(ck["optimizer"])
        run.scheduler.load_state_dict(ck["scheduler"])
        run.probe.load_state_dict(ck["probe"])
        run.probe_opt.load_state_dict(ck["probe_optimizer"])
        run.step, run.epoch, run.batches_done = ck["step"], ck["loader"]["epoch"], ck["loader"]["batches_done"]
        if run.batches_done >= run.steps_per_epoch:
            run.epoch, run.batches_done = run.epoch + 1, 0
        console.print(f"resumed {last} at step {run.step} (epoch {run.epoch}, batch {run.batches_done})")
    elif resume:
        console.print(f"nothing to resume in {run.cfg.out_dir}; starting fresh")


def _train_step(run: _Run, batch: dict[str, Any]) -> tuple[Any, torch.Tensor]:
    """One optimiser step of the method (plus the gate-balance loss) and of the online probe."""
    cfg, method = run.cfg, run.method
    method.train()
    v1, v2 = make_views(batch, cfg, run.step, run.size, run.device, run.spec)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and run.device.type == "cuda"):
        out = run.model(v1, v2)
    loss = out.loss
    if run.gates is not None:
        w = method.encoder.take_gate_weights()
        if w is not None:
            if cfg.gate_balance > 0:
                loss = loss + cfg.gate_balance * importance_loss(w.float())
            run.gates.update(w)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    method.before_optimizer_step(run.step, run.total_steps)
    run.optimizer.step()
    run.scheduler.step()
    method.on_step_end(run.step, run.total_steps)
    labels = batch["label"].to(run.device)
    probe_loss = nn.functional.cross_entropy(run.probe(out.features.float()), labels)
    run.probe_opt.zero_grad(set_to_none=True)
    probe_loss.backward()
    run.probe_opt.step()
    return out, labels


def _epoch_loop(run: _Run, logs: RunLogs, progress: Progress, stop_at: int) -> None:
    """Epochs until ``stop_at`` steps: train steps, logging, checkpoints, and the per-epoch gate and val monitors."""
    cfg = run.cfg
    bar = progress.add_task("train", total=stop_at, completed=run.step, loss="-", rate="-")
    t_loop = time.perf_counter()
    while run.step < stop_at:
        run.dataset.load_state_dict({"epoch": run.epoch, "batches_done": run.batches_done, "seed": cfg.seed})
        for batch in make_loader(run.dataset, num_workers=run.workers, pin_memory=run.device.type == "cuda"):
            out, labels = _train_step(run, batch)
            run.step += 1
            run.batches_done += 1
            run.samples += len(labels) * run.world
            if run.step % cfg.log_every == 0 or run.step == stop_at:
                # .item() is a device sync: only on logging steps.
                run.last_loss = float(out.loss.detach())
                rate = run.samples / max(1e-9, time.perf_counter() - t_loop)
                acc = float((run.probe(out.features.float()).argmax(1) == labels).float().mean())
                progress.update(bar, completed=run.step, loss=f"{run.last_loss:.4f}", rate=f"{rate:.0f}")
                gates = run.gates.summary() if run.gates is not None else {}
                logs.step(run.step, run.epoch, run.scheduler.get_last_lr()[0], run.last_loss, acc, rate, gates)
            else:
                progress.update(bar, completed=run.step)
            if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
                run.checkpoint(Path(cfg.out_dir) / LAST)
            if run.step >= stop_at:
                break
        if run.batches_done >= run.steps_per_epoch:
            if run.gates is not None:
                logs.epoch_gates(run.epoch, run.step, run.gates.summary())
                run.gates.reset()
            run.epoch, run.batches_done = run.epoch + 1, 0
            if cfg.monitor_every and run.epoch % cfg.monitor_every == 0 and is_main_process():
                run.monitors = _monitors(run.method.encoder, run.probe, cfg, run.size, run.device)
                logs.scalars("val", run.monitors, run.step)
    run.samples_per_s = run.samples / max(1e-9, time.perf_counter() - t_loop)


def train(
    cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, console: Console | None = None
) -> TrainResult:
    """Train one stage into ``cfg.out_dir``, which it holds exclusively (see :mod:`topo.trainer.run_folder`)."""
    main = int(os.environ.get("RANK", "0")) == 0
    with claim_run_folder(Path(cfg.out_dir), resume=resume, overwrite=overwrite, main=main):
        return _train(cfg, resume=resume, console=console or Console(stderr=True))


def _train(cfg: TrainConfig, *, resume: bool, console: Console) -> TrainResult:
    """Set up, run the epoch loop, save ``last.pt`` (and ``final.pt`` when the schedule or ``max_steps`` ends)."""
    t_start = time.perf_counter()
    run = _set_up(cfg, resume, console)
    out_dir = Path(cfg.out_dir)
    gate_columns = run.gates.columns() if run.gates is not None else []
    logs = RunLogs(out_dir, enabled=is_main_process(), gate_columns=gate_columns)
    if is_main_process():
        console.print(f"{cfg.stage} views: {view_definition(cfg)}")
    progress = Progress(
        TextColumn(f"[bold]{cfg.method}/{cfg.stage}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps · loss {task.fields[loss]} · {task.fields[rate]} img/s"),
        TimeRemainingColumn(),
        console=console,
        disable=not (cfg.progress and is_main_process()),
    )
    final = out_dir / FINAL
    try:
        meta = {"config_hash": config_hash(cfg), "run_name": run_name(cfg), "views": view_definition(cfg)}
        logs.open({**cfg.to_json(), **meta})
        with progress:
            _epoch_loop(run, logs, progress, min(run.total_steps, cfg.max_steps or run.total_steps))
        run.checkpoint(out_dir / LAST)
        if run.step >= run.total_steps or cfg.max_steps:
            run.checkpoint(final)
    finally:
        logs.close()
    seconds = time.perf_counter() - t_start
    if is_main_process():
        write_summary(out_dir, run.step, run.step * cfg.batch_size, cfg.epochs, seconds, resumed=resume)
    return TrainResult(
        out_dir,
        final if final.exists() else out_dir / LAST,
        run.step,
        run.epoch + run.batches_done / run.steps_per_epoch,
        seconds,
        run.samples_per_s,
        run.last_loss,
        run.monitors,
    )


def _monitors(
    encoder: nn.Module, probe: nn.Linear, cfg: TrainConfig, size: int, device: torch.device
) -> dict[str, float]:
    """KNN accuracy and online-probe accuracy on the validation split (never the test split)."""
    from topo.trainer.eval.knn import knn_accuracy

    kw: dict[str, Any] = {"stage": cfg.stage, "image_size": size, "device": device}
    kw["full_image"] = cfg.topo_views == "full_image"  # diagrams as in training: of the whole image
    train = extract_features(encoder, cfg.store, "train", limit=4096, **kw)
    val = extract_features(encoder, cfg.store, "val", **kw)
    assert not isinstance(train, tuple) and not isinstance(val, tuple)
    with torch.no_grad():
        pred = probe(torch.from_numpy(val.x).to(device)).argmax(1).cpu().numpy()
    return {"knn_acc": float(knn_accuracy(train, val, k=20)), "online_probe_acc": float((pred == val.y).mean())}
