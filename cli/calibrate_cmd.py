"""`topo calibrate-aug`: options and the call into the calibration job."""

from __future__ import annotations

from typing import Annotated

import typer

from topo.cli.common import DatasetOpt, StoreOpt, Workspace, fail, out, store_arg


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

    target = store_arg(store, dataset, workspace)
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
