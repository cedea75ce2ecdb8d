"""One training stage, start to finish: setup, data, model, optimiser, resume, then the loop.

Reads top to bottom in the order things happen. A checkpoint is a plain dict holding the model, optimiser,
scheduler and loader states, the config, the store's identity and the step; ``resume`` continues from it only
when the configuration and the store match.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass
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
from topo.trainer.config import TrainConfig
from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.dist import get_rank, get_world_size, is_main_process
from topo.trainer.eval.extract import DIAGRAM_KEYS, extract_features
from topo.trainer.methods import build_method
from topo.trainer.stage_views import make_views, view_definition
from topo.trainer.topo_views import TopoViews

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
    from topo.store_schema.calibration import calibrated_on_full_image

    if not calibrated_on_full_image(store):
        raise ValueError(
            "--topo-views full_image needs a whole-image calibration: run `topo calibrate-aug --full-image` on "
            "this store (its ranges were calibrated on ROI diagrams)"
        )


def lr_lambda(warmup_steps: int, total_steps: int):
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def train(cfg: TrainConfig, *, resume: bool = False, console: Console | None = None) -> TrainResult:
    console = console or Console(stderr=True)
    t_start = time.perf_counter()

    # --- setup: processes, device, seeds ------------------------------------------------------------------------
    device = _setup_distributed(cfg)
    rank, world = get_rank(), get_world_size()
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the world size {world}")
    local_batch = cfg.batch_size // world

    # --- data: the store, and topology-aware views for the topology branch ----------------------------------------
    store = open_store(cfg.store)
    store.validate()
    g = store.geometry
    size = cfg.image_size or g.height
    spec = FiltrationSpec.from_json(store.persistence_spec)
    transform = None
    if cfg.stage in ("topo", "joint"):
        from topo.store_schema.calibration import load_ranges

        ranges = load_ranges(store) if cfg.pairing != "standard" else {}
        if cfg.topo_views == "full_image" and cfg.pairing != "standard":
            check_full_image_calibration(store)
        transform = TopoViews(
            ranges, spec, pairing=cfg.pairing, mode=cfg.topo_views, seed=cfg.seed, intensities=cfg.intensities
        )
    keys = ["index", "label"] + (["image"] if cfg.stage == "visual" else ["image", "roi_mask", *DIAGRAM_KEYS])
    dataset = StoreDataset(
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
    )
    workers = loader_workers(cfg.num_workers, per_sample_views=transform is not None)
    steps_per_epoch = dataset.num_batches()
    if steps_per_epoch == 0:
        raise ValueError(f"the train split has fewer samples than one batch of {local_batch} per rank")
    total_steps = cfg.epochs * steps_per_epoch

    # --- model: backbone for this stage, wrapped by the SSL method -------------------------------------------------
    for init in (cfg.init_visual, cfg.init_topo):
        if init:  # stages 1 and 2 may have run on another copy of the data, never on another kind of store
            check_store_compatible(load_checkpoint(init)["store"], store, same_data=False)
    backbone = build_backbone(cfg, g)
    method = build_method(cfg.method, backbone, backbone.feat_dim, **cfg.method_options).to(device)
    model: nn.Module = method
    if world > 1:
        if device.type == "cuda":  # BatchNorm statistics shared across ranks, as the methods' papers train them
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    probe = nn.Linear(backbone.feat_dim, len(store.class_names)).to(device)  # online monitor on detached features

    # --- optimiser and schedule: AdamW, linear warm-up, cosine; lr scaled with the global batch -----------------
    lr = cfg.lr * cfg.batch_size / 256
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    warmup = min(total_steps, int(cfg.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total_steps))
    probe_opt = torch.optim.AdamW(probe.parameters(), lr=1e-3, weight_decay=0.0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda")

    # --- resume: only the same configuration on the same store -------------------------------------------------
    step, epoch, batches_done = 0, 0, 0
    last = out_dir / LAST
    if resume and last.exists():
        ck = load_checkpoint(last)
        diff = cfg.differences(ck["config"])
        if diff:
            raise CheckpointError(
                f"{last} was trained with another configuration (differs in: {', '.join(diff)}); "
                "start a new run directory or drop --resume"
            )
        check_store_compatible(ck["store"], store, same_data=True)
        method.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        probe.load_state_dict(ck["probe"])
        probe_opt.load_state_dict(ck["probe_optimizer"])
        step, epoch, batches_done = ck["step"], ck["loader"]["epoch"], ck["loader"]["batches_done"]
        if batches_done >= steps_per_epoch:
            epoch, batches_done = epoch + 1, 0
        console.print(f"resumed {last} at step {step} (epoch {epoch}, batch {batches_done})")
    elif resume:
        console.print(f"nothing to resume in {out_dir}; starting fresh")

    def checkpoint(path: Path) -> None:
        if not is_main_process():
            return
        save_checkpoint(
            path,
            {
                "model": method.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "probe": probe.state_dict(),
                "probe_optimizer": probe_opt.state_dict(),
                "loader": {"epoch": epoch, "batches_done": batches_done},
                "step": step,
                "config": cfg.to_json(),
                "store": store_identity(store),
                "geometry": g.to_json(),
                "class_names": store.class_names,
            },
        )

    # --- logs ------------------------------------------------------------------------------------------------------
    writer = None
    log_file = None
    if is_main_process():
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps({**cfg.to_json(), "views": view_definition(cfg)}, indent=2))
        console.print(f"{cfg.stage} views: {view_definition(cfg)}")
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"))
        new_log = not (out_dir / "log.csv").exists()
        log_file = (out_dir / "log.csv").open("a", newline="")
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["step", "epoch", "lr", "loss", "probe_acc_train", "samples_per_s"])

    # --- the loop --------------------------------------------------------------------------------------------------
    stop_at = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps
    monitors: dict[str, float] = {}
    last_loss = float("nan")
    t_loop, samples = time.perf_counter(), 0
    progress = Progress(
        TextColumn(f"[bold]{cfg.method}/{cfg.stage}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps · loss {task.fields[loss]} · {task.fields[rate]} img/s"),
        TimeRemainingColumn(),
        console=console,
        disable=not (cfg.progress and is_main_process()),
    )
    with progress:
        bar = progress.add_task("train", total=stop_at, completed=step, loss="-", rate="-")
        while step < stop_at:
            dataset.load_state_dict({"epoch": epoch, "batches_done": batches_done, "seed": cfg.seed})
            loader = make_loader(dataset, num_workers=workers, pin_memory=device.type == "cuda")
            for batch in loader:
                method.train()
                v1, v2 = make_views(batch, cfg, step, size, device, spec)
                with autocast:
                    out = model(v1, v2)
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                method.before_optimizer_step(step, total_steps)
                optimizer.step()
                scheduler.step()
                method.on_step_end(step, total_steps)

                labels = batch["label"].to(device)
                probe_loss = nn.functional.cross_entropy(probe(out.features.float()), labels)
                probe_opt.zero_grad(set_to_none=True)
                probe_loss.backward()
                probe_opt.step()

                step += 1
                batches_done += 1
                samples += len(labels) * world
                if step % cfg.log_every == 0 or step == stop_at:
                    # .item() is a device sync: only on logging steps.
                    last_loss = float(out.loss.detach())
                    rate = samples / max(1e-9, time.perf_counter() - t_loop)
                    acc = float((probe(out.features.float()).argmax(1) == labels).float().mean())
                    progress.update(bar, completed=step, loss=f"{last_loss:.4f}", rate=f"{rate:.0f}")
                    if writer is not None and log_file is not None:
                        writer.add_scalar("train/loss", last_loss, step)
                        writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                        writer.add_scalar("train/online_probe_acc", acc, step)
                        csv.writer(log_file).writerow(
                            [
                                step,
                                epoch,
                                f"{scheduler.get_last_lr()[0]:.6g}",
                                f"{last_loss:.6f}",
                                f"{acc:.4f}",
                                f"{rate:.1f}",
                            ]
                        )
                        log_file.flush()
                else:
                    progress.update(bar, completed=step)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    checkpoint(out_dir / LAST)
                if step >= stop_at:
                    break
            if batches_done >= steps_per_epoch:
                epoch, batches_done = epoch + 1, 0
                if cfg.monitor_every and epoch % cfg.monitor_every == 0 and is_main_process():
                    monitors = _monitors(method.encoder, probe, cfg, size, device)
                    if writer is not None:
                        for k, v in monitors.items():
                            writer.add_scalar(f"val/{k}", v, step)
    checkpoint(out_dir / LAST)
    final = out_dir / FINAL
    if step >= total_steps or cfg.max_steps:
        checkpoint(final)
    if writer is not None:
        writer.close()
    if log_file is not None:
        log_file.close()
    seconds = time.perf_counter() - t_start
    return TrainResult(
        out_dir,
        final if final.exists() else out_dir / LAST,
        step,
        epoch + batches_done / steps_per_epoch,
        seconds,
        samples / max(1e-9, time.perf_counter() - t_loop),
        last_loss,
        monitors,
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
