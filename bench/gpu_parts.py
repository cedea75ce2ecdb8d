"""The parts of ``bench/gpu.py``; each runs in its own process and appends its rows to ``<work>/<part>.jsonl``.

A row is written as soon as it is measured, so a part stopped at its cap keeps what it had. ``dry`` selects tiny
sizes on the CPU (tiny random SAM, ResNet-18, 28² images) that run the same code paths.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

COMPILE_LIMIT_S = 60.0  # the issue: bf16 + torch.compile only if it compiles within a minute


class Part:
    def __init__(self, name: str, work: Path, dry: bool) -> None:
        self.name, self.work, self.dry = name, work, dry
        self.dev = torch.device("cpu" if dry else "cuda")
        self._rows = (work / f"{name}.jsonl").open("a")

    def emit(self, row: dict[str, Any]) -> None:
        self._rows.write(json.dumps(row) + "\n")
        self._rows.flush()

    def note(self, text: str) -> None:
        self.emit({"note": text})

    def sync(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> float | str:
        return round(torch.cuda.max_memory_allocated() / 2**20) if self.dev.type == "cuda" else "-"

    def sam(self) -> dict[str, Any]:
        return json.loads((self.work / "sam.json").read_text())


# --------------------------------------------------------------------------------------------------------- data
def blob_images(n: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """Bright blobs of varied size on textured noise, ``(n, size, size, channels)`` uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = np.empty((n, size, size, channels), np.uint8)
    for i in range(n):
        img = rng.normal(60, 20, (size, size))
        for _ in range(int(rng.integers(1, 5))):
            cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.25)
            img += 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
        images[i] = np.clip(img, 0, 255).astype(np.uint8)[..., None]
    return images


def write_npz(path: Path, n: int, size: int, channels: int, seed: int = 0) -> Path:
    """:func:`blob_images` in MedMNIST layout (90/5/5 split, 2 classes)."""
    images = blob_images(n, size, channels, seed)
    labels = (np.arange(n) % 2).astype(np.uint8)[:, None]
    a, b = int(0.9 * n), int(0.95 * n)
    images = images if channels > 1 else images[..., 0]
    np.savez(
        path,
        train_images=images[:a],
        train_labels=labels[:a],
        val_images=images[a:b],
        val_labels=labels[a:b],
        test_images=images[b:],
        test_labels=labels[b:],
    )
    return path


def build_store_cli(npz: Path, out: Path, roi_args: list[str], dry: bool, chunk: int) -> float:
    """``topo build-store`` as a user runs it; returns its wall time."""
    cmd = [sys.executable, "-m", "topo.cli", "build-store", "--dataset", "npz", "--data-dir", str(npz)]
    cmd += ["--out", str(out), "--overwrite", "--no-progress", "--chunk-size", str(chunk), *roi_args]
    cmd += ["--num-cpus", "2"] if dry else []
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


class DeviceMemoryPoll:
    """Largest device memory in use while a block runs (nvidia-smi: other processes, e.g. a Ray actor, included)."""

    def __init__(self) -> None:
        self.peak: float | str = "-"
        self._stop = threading.Event()
        self._smi = shutil.which("nvidia-smi")

    def _poll(self) -> None:
        cmd = [self._smi or "", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "--id=0"]
        while not self._stop.wait(0.5):
            out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
            if out.isdigit():
                self.peak = max(int(out), 0 if self.peak == "-" else int(self.peak))

    def __enter__(self) -> DeviceMemoryPoll:
        if self._smi:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


# --------------------------------------------------------------------------------------------------------- SAM
def sam_weights(p: Part) -> None:
    from topo.pipeline.roi.sam import OFFICIAL_CHECKPOINTS, SAM_CHECKPOINT_ENV, _builders, save_tiny_test_checkpoint

    t0 = time.perf_counter()
    given = os.environ.get(SAM_CHECKPOINT_ENV)
    if given:
        model = OFFICIAL_CHECKPOINTS.get(Path(given).name, ("vit_h", ""))[0]
        info = {"model": model, "checkpoint": given, "weights": Path(given).name}
    elif p.dry:
        ckpt = save_tiny_test_checkpoint(p.work / "sam_tiny_random.pth")
        info = {"model": "vit_tiny_test", "checkpoint": str(ckpt), "weights": "random (tiny test model)"}
    else:
        torch.manual_seed(0)
        ckpt = p.work / "sam_vit_h_random.pth"  # not an official name: no md5 to match
        torch.save(_builders()["vit_h"](checkpoint=None).state_dict(), ckpt)
        info = {"model": "vit_h", "checkpoint": str(ckpt), "weights": "random (same compute as the checkpoint)"}
    (p.work / "sam.json").write_text(json.dumps(info))
    p.emit({"model": info["model"], "weights": info["weights"], "seconds": round(time.perf_counter() - t0, 1)})


def _load_sam(p: Part) -> Any:
    from topo.pipeline.roi.sam import _builders

    info = p.sam()
    sam = _builders()[info["model"]](checkpoint=None)
    sam.load_state_dict(torch.load(info["checkpoint"], map_location="cpu", weights_only=True))
    return sam.to(p.dev).eval()


def _time_encoder(p: Part, enc: Any, batch: int, bf16: bool, iters: int) -> tuple[float, float]:
    """(first call s, mean s per timed call) on random 1024² input."""
    x = torch.randn(batch, 3, enc.img_size, enc.img_size, device=p.dev)
    autocast = torch.autocast(p.dev.type, dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), autocast:
        t0 = time.perf_counter()
        enc(x)
        p.sync()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(iters):
            enc(x)
        p.sync()
    return first, (time.perf_counter() - t0) / iters


def sam_encoder(p: Part) -> None:
    from topo.pipeline.roi.sam_batched import enable_sdpa

    enc = _load_sam(p).image_encoder
    batches, iters = ((1,), 1) if p.dry else ((1, 4, 8), 3)
    for mode, bf16 in (("fp32", False), ("bf16 autocast", True), ("bf16 + SDPA", True)):
        if mode == "bf16 + SDPA":
            enable_sdpa(enc)
        for b in batches:
            p.reset_peak()
            _, sec = _time_encoder(p, enc, b, bf16, iters)
            p.emit({"encoder": mode, "batch": b, "img/s": b / sec, "ms/batch": 1000 * sec, "peak MiB": p.peak_mib()})


def sam_compile(p: Part) -> None:
    from topo.pipeline.roi.sam_batched import enable_sdpa

    enc = _load_sam(p).image_encoder
    enable_sdpa(enc)
    # A dry run checks the wrapping, not inductor (minutes on a CPU); one compile per batch shape on a GPU.
    compiled = torch.compile(enc, dynamic=False, **({"backend": "eager"} if p.dry else {}))
    for b in (1,) if p.dry else (8, 1, 4):
        p.reset_peak()
        first, sec = _time_encoder(p, compiled, b, True, 1 if p.dry else 3)
        row = {"encoder": "bf16 + SDPA + torch.compile", "batch": b, "compile s": round(first, 1)}
        p.emit(row | {"img/s": b / sec, "ms/batch": 1000 * sec, "peak MiB": p.peak_mib()})
        if first > COMPILE_LIMIT_S:
            p.note(f"compiling took {first:.0f} s > {COMPILE_LIMIT_S:.0f} s at batch {b}: other batches skipped")
            return


def sam_roi(p: Part) -> None:
    from topo.pipeline.roi import make_roi

    info = p.sam()
    n_box, n_auto, grid = (2, 1, 2) if p.dry else (65, 4, 32)
    images = list(blob_images(n_box, 224, 3))
    common = {"model": info["model"], "checkpoint": info["checkpoint"], "device": str(p.dev)}
    roi = make_roi("sam", mode="box", batch_size=8, **common)
    roi.checked(images[:1])  # warm-up
    p.reset_peak()
    t0 = time.perf_counter()
    res = roi.checked(images[1:])
    p.sync()
    sec = time.perf_counter() - t0
    row = {"mode": "box, batch 8", "images": len(res), "img/s": len(res) / sec, "s/image": sec / len(res)}
    p.emit(row | {"peak MiB": p.peak_mib()})
    auto = roi  # the same model (loading and hashing ViT-H again would cost the part's cap)
    auto.mode, auto.auto_params = "auto", {**auto.auto_params, "points_per_side": grid}
    p.reset_peak()
    t0 = time.perf_counter()
    auto.checked(images[:n_auto])
    p.sync()
    sec = time.perf_counter() - t0
    row = {"mode": f"auto, {grid}×{grid} grid", "images": n_auto, "img/s": n_auto / sec, "s/image": sec / n_auto}
    p.emit(row | {"peak MiB": p.peak_mib()})


def sam_box_store(p: Part) -> None:
    info = p.sam()
    n, size = (6, 28) if p.dry else (256, 224)
    npz = write_npz(p.work / "box.npz", n, size, 3)
    roi = ["--roi", "sam", "--sam-model", info["model"], "--sam-checkpoint", info["checkpoint"], "--sam-mode", "box"]
    with DeviceMemoryPoll() as mem:
        wall = build_store_cli(npz, p.work / "box.zarr", roi, p.dry, 3 if p.dry else 64)
    p.emit({"build": f"topo build-store --roi sam (box), {n} × {size}² RGB", "wall s": wall, "img/s": n / wall})
    p.note(f"wall includes Ray start and model load; device memory in use at most {mem.peak} MiB (nvidia-smi)")


# ------------------------------------------------------------------------------------------------------- training
def _steady_step_s(run: Path, batch: int, warmup: int) -> float:
    """Mean step time after ``warmup`` steps of a run logged every step.

    From the TensorBoard events' wall times where they can be read; else from the CSV log's cumulative img/s,
    which is rounded to 0.1 img/s (fine at GPU rates, coarse on a CPU).
    """
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run / "tb"))
        events.Reload()
        t = [e.wall_time for e in events.Scalars("train/loss")]
    except Exception:  # an optional reader; the CSV below always exists
        rows = list(csv.DictReader((run / "log.csv").open()))
        t = [int(r["step"]) * batch / float(r["samples_per_s"]) for r in rows]  # seconds since the loop started
    return (t[-1] - t[warmup - 1]) / (len(t) - warmup)


def _loader_rate(store: Path, batch: int, workers: int, topo: bool, n_batches: int) -> float:
    from topo.store_schema import open_store
    from topo.store_schema.filtration import FiltrationSpec
    from topo.trainer.data import StoreDataset, make_loader
    from topo.trainer.eval.extract import DIAGRAM_KEYS
    from topo.trainer.topo_views import TopoViews

    st = open_store(store)
    tv = TopoViews({}, FiltrationSpec.from_json(st.persistence_spec), pairing="standard") if topo else None
    keys = ["index", "label", "image"] + (["roi_mask", *DIAGRAM_KEYS] if topo else [])
    ds = StoreDataset(str(store), batch_size=batch, transform=tv, keys=keys, collate=True)
    it = iter(make_loader(ds, num_workers=workers if topo else 0))
    next(it)  # worker start-up
    t0, seen = time.perf_counter(), 0
    for _ in range(n_batches):
        try:
            seen += len(next(it)["label"])
        except StopIteration:
            it = iter(make_loader(ds, num_workers=workers if topo else 0))
    return seen / (time.perf_counter() - t0)


def train(p: Part) -> None:
    from topo.trainer.config import TrainConfig
    from topo.trainer.train import train as run_train

    n, size, batch, backbone, width = (48, 28, 2, "resnet18", 32) if p.dry else (640, 224, 256, "resnet50", 384)
    warmup, timed = (1, 1) if p.dry else (3, 6)
    workers = 2 if p.dry else max(2, (os.cpu_count() or 4) - 2)
    if p.dry and (p.work / "box.zarr").exists():  # one Ray start less: the dry run trains on the SAM box store
        store = p.work / "box.zarr"
        p.note(f"store: the sam_box_store part's; {workers} loader workers")
    else:
        store = p.work / "train.zarr"
        wall = build_store_cli(write_npz(p.work / "train.npz", n, size, 1), store, ["--roi", "otsu"], p.dry, 64)
        p.note(f"store: {n} generated {size}² grey images, otsu ROI, built in {wall:.0f} s; {workers} loader workers")
    rates = {}
    for method in ("simclr", "byol"):
        for stage in ("visual", "joint"):
            cfg = TrainConfig(
                store=str(store), out_dir=str(p.work / f"run-{method}-{stage}"), method=method, stage=stage,
                backbone=backbone, batch_size=batch, max_steps=warmup + timed, monitor_every=0, checkpoint_every=0,
                log_every=1, progress=False, pairing="standard", topo_views="online", topo_width=width,
                num_workers=workers if stage == "joint" else None, device=str(p.dev),
            )  # fmt: skip
            p.reset_peak()
            run_train(cfg)
            sec = _steady_step_s(Path(cfg.out_dir), batch, warmup)
            rates[method, stage] = batch / sec
            label = "baseline (stage 1, visual)" if stage == "visual" else "+TopoCL (stage 3, online PDs)"
            row = {"method": method, "run": label, "batch": batch, "ms/step": 1000 * sec, "img/s": batch / sec}
            over = f"{100 * (rates[method, 'visual'] / rates[method, stage] - 1):+.1f} %" if stage == "joint" else ""
            p.emit(row | {"step overhead": over, "peak MiB": p.peak_mib()})
        if method == "simclr":
            for topo in (False, True):
                rate = _loader_rate(store, batch, workers, topo, 1 if p.dry else 6)
                what = f"loader alone, {'two topology views + PDs per sample' if topo else 'images'}"
                p.emit({"method": "-", "run": what, "batch": batch, "img/s": rate})
    p.note(
        "TopoCL runs use --pairing standard (no calibration needed; the same operators and the same online "
        "diagrams per view as a calibrated pairing); the GPU is starved when the loader's topology rate is below "
        "the +TopoCL step rate"
    )


PARTS = {f.__name__: f for f in (sam_weights, sam_encoder, sam_compile, sam_roi, sam_box_store, train)}


def run(name: str, work: Path, dry: bool) -> None:
    if dry:
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    PARTS[name](Part(name, work, dry))
