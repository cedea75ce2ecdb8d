"""`topo build-store`: options and the call into the build job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from topo.cli.common import BUILD, Workspace, err, fail, out
from topo.cli.options import print_full
from topo.cli.roi_options import parse_roi_params, sam_params
from topo.cli.workspace import (
    default_data_dir,
    store_name,
    store_path_for,
    workspace_root,
)
from topo.pipeline.roi.registry import roi_help
from topo.pipeline.sources.registry import sources_help


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
    roi_suspect: Annotated[
        str,
        typer.Option(
            help="A suspect ROI mask: auto (fallback where the dataset declares lesion polarity, else keep), "
            "fallback (whole image), keep (flag only) or fail."
        ),
    ] = BUILD.roi_suspect,
    image_size: Annotated[
        int | None, typer.Option(help="Store image size (default: native; 224 for image files).")
    ] = BUILD.image_size,
    jpeg_draft: Annotated[
        bool,
        typer.Option(
            help="Decode JPEGs ≥ 4× the store size DCT-downscaled (faster; stored pixels within a mean of 2 grey "
            "levels of a full decode). --no-jpeg-draft: full decode."
        ),
    ] = BUILD.jpeg_draft,
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
        roi_suspect=roi_suspect,
        filtration=FiltrationSpec(direction="superlevel" if superlevel else "sublevel", full_diagrams=full_diagrams),
        chunk_size=chunk_size,
        jpeg_draft=jpeg_draft,
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
    t.add_row("seconds", f"{s.seconds:.1f} (Ray start-up {s.ray_start_seconds:.1f})")
    if s.images_per_second:
        t.add_row("images / s", f"{s.images_per_second:.1f} (chunks computed now, Ray start-up left out)")
    if s.fingerprint:
        t.add_row("fingerprint", s.fingerprint)
    out.print(t)
    if s.fingerprint:
        print_full(out, "fingerprint:", s.fingerprint)  # whole, whatever the width: the table may cut it
    if s.complete:
        from topo.store_schema import open_store
        from topo.store_schema.calibration import calibrate_hint

        built = open_store(s.store)
        if not built.attrs.get("calibration"):
            err.print(f"next: calibrate the augmentations with {escape(calibrate_hint(built))}", soft_wrap=True)
    for sid, reason in s.failures[:5]:
        err.print(f"[yellow]failed[/] {sid}: {reason}")
    if s.counts.get("failed"):
        err.print("All failures with reasons: the manifest's status and reason columns (`topo store info --failures`).")
