"""The ``topo`` command: build-store → calibrate-aug → train → eval, and store utilities."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from topo import __version__
from topo.cli.cue_check import cue_check_cmd
from topo.cli.defaults import config_defaults
from topo.cli.options import StoreOption, StorePositional, backbone_problem, pick_store, print_full
from topo.cli.roi_options import parse_roi_params, sam_params
from topo.cli.store_extra import export_datalist_cmd, pack_cmd, unpack_cmd
from topo.cli.workspace import (
    WORKSPACE_ENV,
    WorkspaceError,
    default_data_dir,
    resolve_store,
    store_name,
    store_path_for,
    workspace_root,
)
from topo.pipeline.build_config import BuildConfig
from topo.pipeline.roi.registry import roi_help
from topo.pipeline.sources.registry import sources_help

# Defaults come from the config dataclasses; the options below never restate them.
BUILD = config_defaults(BuildConfig)

app = typer.Typer(
    name="topo",
    help="Topology-aware self-supervised learning on medical images (TopoCL): persistence feature stores and "
    "contrastive training from them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Inspect, check and move stores.", no_args_is_help=True)
app.add_typer(store_app, name="store")
store_app.command("pack")(pack_cmd)
store_app.command("unpack")(unpack_cmd)
store_app.command("export-datalist")(export_datalist_cmd)
app.command("cue-check")(cue_check_cmd)

out = Console()
err = Console(stderr=True)

Workspace = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help=f"Where stores and runs live (default ${WORKSPACE_ENV} or ./topo-workspace)."
    ),
]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store path or URL (default: found in the workspace).")]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", "-d", help="Dataset name of a store in the workspace.")]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(f"topo {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """topo: persistence feature stores and topology-aware contrastive training."""


# --------------------------------------------------------------------------------------------------- build-store
@app.command("build-store")
def build_store_cmd(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help=f"The dataset source. {sources_help()}.")] = "demo",
    data_dir: Annotated[
        str | None,
        typer.Option(
            help="Where the dataset's files are (default: <workspace>/data/<dataset>; a file for --dataset npz)."
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="MedMNIST resolution: 28, 64, 128 or 224.")] = BUILD.size,
    download: Annotated[bool, typer.Option(help="Download a MedMNIST subset first (needs internet).")] = BUILD.download,
    out_path: Annotated[Path | None, typer.Option("--out", help="Store directory (default: the workspace's).")] = None,
    roi: Annotated[str, typer.Option(help=roi_help())] = BUILD.roi,
    roi_param: Annotated[
        list[str] | None, typer.Option(help="A backend parameter KEY=VALUE (repeatable), e.g. min_area=0.02.")
    ] = None,
    sam_model: Annotated[
        str, typer.Option(help="vit_h, vit_l, vit_b (vit_tiny_test: random weights, tests only).")
    ] = "vit_h",
    sam_checkpoint: Annotated[str | None, typer.Option(help="SAM weights (default $TOPO_SAM_CHECKPOINT).")] = None,
    sam_mode: Annotated[
        str, typer.Option(help="box (one prompt, cheap) or auto (mask generator, as the paper).")
    ] = "box",
    sam_points_per_side: Annotated[int, typer.Option(help="auto mode: point grid per side.")] = 32,
    image_size: Annotated[
        int | None, typer.Option(help="Store image size (default: native; 224 for image files).")
    ] = BUILD.image_size,
    full_diagrams: Annotated[
        bool, typer.Option(help="Also keep every persistence pair (Parquet beside the arrays).")
    ] = BUILD.filtration.full_diagrams,
    superlevel: Annotated[bool, typer.Option(help="Superlevel filtration (bright structures first).")] = (
        BUILD.filtration.direction == "superlevel"
    ),
    chunk_size: Annotated[
        int, typer.Option(help="Samples per chunk (the unit of work and of resume).")
    ] = BUILD.chunk_size,
    image_codec: Annotated[
        str | None,
        typer.Option(help="Pixel codec: lz4 (fast to read; the layout's default) or zstd (smaller, for archiving)."),
    ] = None,
    address: Annotated[str | None, typer.Option(help="Join a Ray cluster: auto or HOST:PORT.")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs for a local Ray (default: all).")] = None,
    num_gpus: Annotated[int | None, typer.Option(help="GPUs for a local Ray.")] = None,
    split_seed: Annotated[
        int, typer.Option(help="Seed of the train/val/test split where none is official.")
    ] = BUILD.split_seed,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples (quick trials).")] = BUILD.limit,
    max_chunks: Annotated[int | None, typer.Option(help="Stop after N chunks; re-run to resume.")] = BUILD.max_chunks,
    strict: Annotated[bool, typer.Option(help="Stop at the first failed sample.")] = BUILD.strict,
    overwrite: Annotated[bool, typer.Option(help="Delete an existing store at --out first.")] = BUILD.overwrite,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    workspace: Workspace = None,
) -> None:
    """Build (or resume) a store: decode → ROI → GUDHI persistence → chunked Zarr, on Ray."""
    from topo.pipeline.job import BuildConfig, BuildError, build_store
    from topo.pipeline.persistence import FiltrationSpec
    from topo.pipeline.ray_runtime import RayResources
    from topo.pipeline.sources import SourceError
    from topo.store_schema import StoreError

    ws = workspace_root(workspace)
    target = out_path or store_path_for(ws, store_name(dataset, size))
    data_dir = data_dir or default_data_dir(ws, dataset, download)
    try:
        roi_params = parse_roi_params(roi_param)
    except ValueError as e:
        fail(str(e))
    if roi == "sam":
        roi_params = {**sam_params(sam_model, sam_checkpoint, sam_mode, sam_points_per_side), **roi_params}
    cfg = BuildConfig(
        dataset=dataset,
        out=Path(target),
        data_dir=data_dir,
        size=size,
        download=download,
        split_seed=split_seed,
        image_size=image_size,
        limit=limit,
        roi=roi,
        roi_params=roi_params,
        filtration=FiltrationSpec(direction="superlevel" if superlevel else "sublevel", full_diagrams=full_diagrams),
        chunk_size=chunk_size,
        **({"image_codec": image_codec} if image_codec else {}),
        resources=RayResources(address=address, num_cpus=num_cpus, num_gpus=num_gpus),
        strict=strict,
        overwrite=overwrite,
        max_chunks=max_chunks,
        progress=progress,
    )
    try:
        s = build_store(cfg, console=err)
    except (SourceError, StoreError, BuildError, FileNotFoundError, ValueError) as e:
        fail(str(e), 1 if isinstance(e, BuildError) else 2)
        return
    t = Table(title=f"store {s.store}", show_header=False)
    t.add_row("complete", "yes" if s.complete else f"no (re-run to resume; {s.chunks_computed} chunks done now)")
    t.add_row("samples", str(s.num_samples))
    for k in ("ok", "fallback", "failed"):
        t.add_row(k, str(s.counts.get(k, 0)))
    t.add_row("chunks computed / skipped", f"{s.chunks_computed} / {s.chunks_skipped}")
    t.add_row("seconds", f"{s.seconds:.1f}")
    if s.fingerprint:
        t.add_row("fingerprint", s.fingerprint)
    out.print(t)
    for sid, reason in s.failures[:5]:
        err.print(f"[yellow]failed[/] {sid}: {reason}")
    if s.counts.get("failed"):
        err.print("All failures with reasons: the manifest's status and reason columns (`topo store info --failures`).")


# --------------------------------------------------------------------------------------------------- store ...
def _open(path: str) -> Any:
    from topo.store_schema import StoreError, open_store

    try:
        return open_store(path)
    except StoreError as e:
        fail(str(e))


def _store_arg(store: str | None, dataset: str | None, workspace: Path | None) -> str:
    try:
        return resolve_store(workspace_root(workspace), store=store, dataset=dataset)
    except WorkspaceError as e:
        fail(str(e))
        raise


@store_app.command("info")
def store_info(
    path: StorePositional = None,
    store: StoreOption = None,
    dataset: DatasetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    failures: Annotated[bool, typer.Option(help="List failed and fallback samples with reasons.")] = False,
    workspace: Workspace = None,
) -> None:
    """Dataset, counts, schema version, fingerprint, filtration, ROI, provenance, licence, calibration."""
    st = _open(_store_arg(pick_store(path, store, err), dataset, workspace))
    d = st.describe()
    if as_json:
        out.print_json(json.dumps(d, default=str))
        return
    t = Table(title=f"topo store {d['location']}", show_header=False)
    ds = d["dataset"]
    t.add_row("dataset", f"{ds.get('name')} — {ds.get('description', '')}")
    t.add_row("licence", str(ds.get("license")) + (" (non-commercial)" if ds.get("non_commercial") else ""))
    t.add_row("classes", ", ".join(ds.get("class_names", [])))
    t.add_row("split policy", str(ds.get("split_policy")))
    g = d["geometry"]
    t.add_row(
        "samples",
        f"{g.get('num_samples')} × {g.get('height')}×{g.get('width')}×{g.get('channels')}, "
        f"chunks of {g.get('chunk_size')}; pixels {d['codecs']['images']}, tables {d['codecs']['labels']}",
    )
    for k, v in d.get("counts", {}).items():
        t.add_row(k.replace("_", " "), ", ".join(f"{a}: {b}" for a, b in v.items()))
    t.add_row("schema", str(d["schema_version"]))
    t.add_row("fingerprint", str(d["fingerprint"]))
    t.add_row("build", "complete" if d["build"].get("complete") else "INCOMPLETE (re-run build-store to resume)")
    p = d["persistence"]
    t.add_row("filtration", f"{p.get('direction')} {p.get('complex')} ({p.get('input_type')}), {p.get('values')}")
    t.add_row("diagrams", f"top-{p.get('k0')} H0, top-{p.get('k1')} H1; {p.get('ordering')}; {p.get('padding')}")
    t.add_row("infinite deaths", str(p.get("infinite_deaths")))
    t.add_row("coefficients", str(p.get("coefficient_field")))
    t.add_row("min persistence", str(p.get("min_persistence")))
    r = d["roi"]
    t.add_row("ROI", f"{r.get('backend')} {json.dumps(r.get('params', {}))}")
    if r.get("checkpoint"):
        t.add_row("ROI checkpoint", json.dumps(r["checkpoint"]))
    v = d["provenance"].get("versions", {})
    t.add_row("made with", ", ".join(f"{k} {val}" for k, val in v.items()))
    cal = d.get("calibration")
    t.add_row(
        "calibration",
        "none (run `topo calibrate-aug`)"
        if not cal
        else f"bands {cal.get('bands')}, {cal.get('samples')} images, seed {cal.get('seed')}",
    )
    out.print(t)
    print_full(out, "fingerprint:", str(d["fingerprint"]))  # the value teams compare: never cut by the table
    if failures and st.is_complete:
        m = st.manifest().to_pandas()
        bad = m[m["status"] != "ok"][["index", "sample_id", "status", "reason"]]
        out.print(bad.to_string(index=False) if len(bad) else "no failed or fallback samples")


@store_app.command("verify")
def store_verify(
    path: StorePositional = None,
    store: StoreOption = None,
    dataset: DatasetOpt = None,
    workspace: Workspace = None,
    fast: Annotated[bool, typer.Option("--fast", help="Skip re-reading the chunks.")] = False,
) -> None:
    """Check a store against the contract; exit non-zero naming every problem."""
    from topo.store_schema import StoreError
    from topo.store_schema.verify import verify_store

    target = _store_arg(pick_store(path, store, err), dataset, workspace)
    try:
        report = verify_store(target, fast=fast)
    except StoreError as e:
        fail(str(e), 1)
        return
    for line in report.problems:
        err.print(f"[red]✗[/] {line}")
    if not report.ok:
        raise typer.Exit(1)
    out.print(f"[green]✓[/] {target}: {report.summary}")


# --------------------------------------------------------------------------------------------------- calibrate-aug
@app.command("calibrate-aug")
def calibrate_aug_cmd(
    store: StoreOpt = None,
    dataset: DatasetOpt = None,
    combos: Annotated[
        str | None,
        typer.Option(help="Combinations, e.g. 'gaussian_noise,gaussian_blur+erosion' (default: the built-in set)."),
    ] = None,
    grid: Annotated[
        str | None,
        typer.Option(
            help="Intensities: a count (evenly spaced in (0,1]) or comma-separated values (default: 8, log-spaced)."
        ),
    ] = None,
    samples: Annotated[int, typer.Option(help="Images, stratified by class.")] = 256,
    seed: Annotated[int, typer.Option(help="Sampling and augmentation seed.")] = 0,
    split: Annotated[str, typer.Option(help="Split to sample images from.")] = "train",
    bands: Annotated[
        str, typer.Option(help="δ bands, e.g. 'weak=0.05:0.15,strong=0.15:0.25'.")
    ] = "weak=0.05:0.15,strong=0.15:0.25",
    full_image: Annotated[
        bool, typer.Option(help="Compute δ on the whole image instead of the ROI (ablation).")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard an earlier calibration of this store.")] = False,
    address: Annotated[str | None, typer.Option(help="Join a Ray cluster: auto or HOST:PORT.")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs for a local Ray (default: all).")] = None,
    plot: Annotated[bool, typer.Option(help="Write the δ-vs-intensity PNG next to the store.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    workspace: Workspace = None,
) -> None:
    """Measure how strongly each augmentation changes topology and derive the topo-weak / topo-strong ranges.

    δ is the relative bottleneck distance on the ROI; the tables and ranges are written into the store.
    """
    from topo.pipeline.augment import DEFAULT_COMBINATIONS, parse_combination
    from topo.pipeline.calibrate import DEFAULT_GRID, format_ranges, parse_bands, parse_grid, run_calibration
    from topo.pipeline.ray_runtime import RayResources
    from topo.store_schema import StoreError

    target = _store_arg(store, dataset, workspace)
    try:
        combinations = tuple(parse_combination(c) for c in combos.split(",")) if combos else DEFAULT_COMBINATIONS
        res = run_calibration(
            target,
            combinations=combinations,
            grid=parse_grid(grid) if grid else DEFAULT_GRID,
            samples=samples,
            seed=seed,
            split=split,
            bands=parse_bands(bands),
            full_image=full_image,
            overwrite=overwrite,
            resources=RayResources(address=address, num_cpus=num_cpus),
            progress=progress,
            plot=plot,
        )
    except (StoreError, ValueError) as e:
        fail(str(e))
        return
    out.print(format_ranges(res.ranges_table))
    out.print(
        f"{res.num_images} images × {res.num_configs} configurations, {res.evaluations} δ evaluations "
        f"in {res.wall_s:.1f} s ({res.blocks_resumed} blocks resumed)"
    )
    if res.plot_path:
        out.print(f"plot: {res.plot_path}")


# --------------------------------------------------------------------------------------------------- train
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


def _run_key(store: str) -> str:
    return Path(store.rstrip("/")).name.removesuffix(".zarr").removesuffix(".zip")


@app.command("train")
def train_cmd(
    method: Annotated[str, typer.Option(help="simclr, mocov3, byol, dino or barlow.")] = "byol",
    stage: Annotated[str, typer.Option(help="visual (stage 1), topo (2), joint (3) or all (1 → 2 → 3).")] = "all",
    store: StoreOpt = None,
    dataset: DatasetOpt = None,
    backbone: Annotated[
        str, typer.Option(help="timm model name (resnet50 as in the paper; resnet18 on CPU).")
    ] = "resnet50",
    epochs: Annotated[int, typer.Option(help="Epochs per stage.")] = 100,
    batch_size: Annotated[int, typer.Option(help="Global batch size.")] = 256,
    lr: Annotated[float, typer.Option(help="AdamW learning rate per 256 samples (scaled with the batch).")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.05,
    warmup_epochs: Annotated[float, typer.Option(help="Linear warm-up before the cosine decay.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Pretraining seed.")] = 0,
    image_size: Annotated[int | None, typer.Option(help="Training resolution (default: the store's).")] = None,
    small_input: Annotated[bool | None, typer.Option(help="3×3 stem without max-pool (default: on for ≤ 64²).")] = None,
    num_workers: Annotated[
        int | None,
        typer.Option(
            help="DataLoader workers (default: none for the visual stage, whose batches are read ahead on threads; "
            "2 for the topology stages, whose views are computed in them)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    max_steps: Annotated[int | None, typer.Option(help="Stop each stage after N steps (short runs).")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 500,
    monitor_every: Annotated[int, typer.Option(help="Epochs between kNN/online-probe checks on val (0: never).")] = 1,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint of the same configuration.")] = False,
    pairing: Annotated[str, typer.Option(help="weak+strong, weak+weak, strong+strong or standard.")] = "weak+strong",
    topo_views: Annotated[
        str, typer.Option(help="online, precomputed or full_image diagrams of the views.")
    ] = "online",
    stage3_views: Annotated[
        str, typer.Option(help="Joint stage views: topo (the paper's) or standard+topo (ablation: stacked).")
    ] = "topo",
    intensities: Annotated[
        str, typer.Option(help="per-op (each operator its own calibrated range) or shared (ablation).")
    ] = "per-op",
    topo_width: Annotated[int, typer.Option(help="Topology encoder width (the paper: 384).")] = 384,
    self_attention: Annotated[bool, typer.Option(help="Topology encoder self-attention (ablation: off).")] = True,
    cross_attention: Annotated[bool, typer.Option(help="Topology encoder cross-attention (ablation: off).")] = True,
    hierarchical: Annotated[bool, typer.Option(help="Both attentions (ablation: off = MLP + pooling).")] = True,
    experts: Annotated[str, typer.Option(help="MoE experts to keep.")] = "vision,topology,concat,gated,cross",
    visual_pretrain: Annotated[bool, typer.Option(help="--stage all: initialise the joint stage from stage 1.")] = True,
    topo_pretrain: Annotated[bool, typer.Option(help="--stage all: initialise the joint stage from stage 2.")] = True,
    method_option: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE for the method's config (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    workspace: Workspace = None,
) -> None:
    """Contrastive pretraining from a store: stage 1 visual, stage 2 topology encoder, stage 3 MoE fusion."""
    from topo.cli.workspace import run_dir
    from topo.pipeline.sources import SourceError  # noqa: F401 - keeps import errors of optional deps early
    from topo.store_schema import StoreError
    from topo.trainer.checkpoint import CheckpointError
    from topo.trainer.config import TrainConfig
    from topo.trainer.dist import is_main_process
    from topo.trainer.train import train

    if (problem := backbone_problem(backbone)) is not None:
        fail(problem)
    ws = workspace_root(workspace)
    target = _store_arg(store, dataset, workspace)
    stages = ["visual", "topo", "joint"] if stage == "all" else [stage]
    key = _run_key(target)
    common: dict[str, Any] = dict(
        store=target,
        method=method,
        backbone=backbone,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
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
        topo_width=topo_width,
        self_attention=self_attention,
        cross_attention=cross_attention,
        hierarchical=hierarchical,
        experts=tuple(e.strip() for e in experts.split(",") if e.strip()),
        method_options=_parse_options(method_option or []),
        progress=progress,
    )
    finals: dict[str, str] = {}
    for st in stages:
        extra: dict[str, Any] = {}
        if st == "joint" and stage == "all":
            extra = {
                "init_visual": finals.get("visual") if visual_pretrain else None,
                "init_topo": finals.get("topo") if topo_pretrain else None,
            }
        try:
            cfg = TrainConfig(out_dir=str(run_dir(ws, key, method, st, seed)), stage=st, **common, **extra)
            res = train(cfg, resume=resume, console=err)
        except (StoreError, CheckpointError, ValueError, FileNotFoundError) as e:
            fail(str(e))
            return
        finals[st] = str(res.checkpoint)
        if not is_main_process():
            continue
        mon = ", ".join(f"{k} {v:.3f}" for k, v in res.monitors.items())
        out.print(
            f"[bold]{st}[/]: {res.steps} steps in {res.seconds:.0f} s ({res.samples_per_s:.0f} img/s), "
            f"loss {res.final_loss:.4f}{'; val ' + mon if mon else ''} → {res.checkpoint}"
        )


# --------------------------------------------------------------------------------------------------- eval
@app.command("eval")
def eval_cmd(
    method: Annotated[str, typer.Option(help="The method whose runs to evaluate.")] = "byol",
    store: StoreOpt = None,
    dataset: DatasetOpt = None,
    seeds: Annotated[str, typer.Option(help="Pretraining seeds, comma-separated.")] = "0,1,2,3,4",
    variants: Annotated[
        str, typer.Option(help="baseline (stage-1 encoder), topocl (fused encoder).")
    ] = "baseline,topocl",
    probe_epochs: Annotated[int, typer.Option(help="Linear-probe epochs.")] = 100,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    workspace: Workspace = None,
) -> None:
    """Linear probe on frozen features (selection on val, test once), ACC/AUC, paired t-tests, Table 3."""
    from topo.store_schema import StoreError
    from topo.trainer.eval.run import evaluate

    ws = workspace_root(workspace)
    target = _store_arg(store, dataset, workspace)
    key = _run_key(target)
    try:
        res = evaluate(
            store=target,
            dataset=key,
            method=method,
            runs=ws / "runs" / key,
            seeds=[int(s) for s in seeds.split(",") if s.strip()],
            variants=[v.strip() for v in variants.split(",") if v.strip()],
            probe_epochs=probe_epochs,
            report_dir=ws / "reports" / key,
            device=device,
        )
    except (FileNotFoundError, StoreError, ValueError) as e:
        fail(str(e))
        return
    out.print(res.markdown.read_text())
    out.print(f"written: {res.markdown}, {res.json}" + "".join(f", {f}" for f in res.figures))


@app.command("report")
def report_cmd(
    results: Annotated[list[Path], typer.Argument(help="results_*.json files written by `topo eval`.")],
    out_prefix: Annotated[Path, typer.Option("--out", help="Prefix of the .md and .json written.")] = Path("table3"),
) -> None:
    """Merge `topo eval` results of several datasets/methods into one Table 3 (Markdown + JSON)."""
    from topo.trainer.eval.report import build_table, load_run_results, to_json, to_markdown

    try:
        records = [r for p in results for r in load_run_results(p)]
        table = build_table(records)
    except (OSError, ValueError, KeyError, TypeError) as e:  # a missing file, not JSON, or not `topo eval` output
        fail(f"cannot read the results ({type(e).__name__}: {e}); give results_*.json files written by `topo eval`")
    md = to_markdown(table)
    out_prefix.with_suffix(".md").write_text(md + "\n")
    out_prefix.with_suffix(".json").write_text(json.dumps(to_json(table), indent=1, allow_nan=False))
    out.print(md)


@app.command("export")
def export_cmd(
    run: Annotated[Path, typer.Argument(help="A run directory (or its checkpoint file).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write model.pt, metadata.json and README.md into.")],
) -> None:
    """Export a trained encoder (visual-only or fused) for use outside topo: `topo.load_encoder(OUT)`."""
    import pickle

    from topo.store_schema import StoreError, open_store
    from topo.trainer.checkpoint import CheckpointError, load_checkpoint
    from topo.trainer.export import export_encoder

    ck_path = run if run.is_file() else run / "checkpoints" / "final.pt"
    try:
        ck = load_checkpoint(ck_path)
        try:
            attrs = open_store(ck["config"]["store"]).attrs
        except StoreError:
            attrs = None  # the store moved: export without its licence text
        path = export_encoder(ck_path, out_dir, store_attrs=attrs)
    except (CheckpointError, FileNotFoundError) as e:
        fail(str(e))
        return
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError) as e:  # a file that is not a topo checkpoint
        fail(f"{ck_path} is not a topo checkpoint ({type(e).__name__}: {e})")
        return
    out.print(f"exported {ck_path} → {path}")


@app.command("fetch-sam")
def fetch_sam_cmd(
    model: Annotated[str, typer.Option(help="vit_h, vit_l or vit_b.")] = "vit_h",
    directory: Annotated[Path, typer.Option("--dir", help="Where to save the checkpoint.")] = Path("checkpoints"),
) -> None:
    """Download an official SAM checkpoint (the only command that fetches weights) and check its md5."""
    import urllib.request

    from topo.pipeline.roi.sam import OFFICIAL_CHECKPOINTS, OFFICIAL_URL, SAM_CHECKPOINT_ENV, resolve_checkpoint

    names = {m: n for n, (m, _) in OFFICIAL_CHECKPOINTS.items()}
    if model not in names:
        fail(f"unknown SAM model {model!r}; valid: {', '.join(names)}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / names[model]
    if not target.exists():
        out.print(f"downloading {OFFICIAL_URL.format(name=target.name)} → {target}")
        tmp = target.with_suffix(".part")
        urllib.request.urlretrieve(OFFICIAL_URL.format(name=target.name), tmp)
        tmp.replace(target)
    info = resolve_checkpoint(model, target)
    out.print(f"{target}: md5 {info['md5']} (official). Use --sam-checkpoint {target} or set {SAM_CHECKPOINT_ENV}.")


# --------------------------------------------------------------------------------------------------- later stages
def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted; re-run the same command to resume")
        sys.exit(130)
