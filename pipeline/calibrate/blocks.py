"""δ rows of blocks of images, computed as Ray tasks that each write their own resumable Parquet part."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray

from topo.pipeline.augment import Combination, combination_name
from topo.pipeline.calibrate.delta import _deltas, config_rng
from topo.pipeline.persistence import FiltrationSpec
from topo.pipeline.ray_runtime import RayResources, cluster_cpus, ensure_ray
from topo.store_schema import StoreFiles, open_store
from topo.store_schema.store import write_table_atomic

PART_SCHEMA = pa.schema(
    [
        pa.field("index", pa.int64(), nullable=False),  # sample index in the store
        pa.field("label", pa.int32(), nullable=False),
        pa.field("combination", pa.string(), nullable=False),
        pa.field("s", pa.float64(), nullable=False),
        pa.field("delta", pa.float64()),  # NaN if T(x) left an empty ROI
        pa.field("delta_h0", pa.float64()),
        pa.field("delta_h1", pa.float64()),
    ]
)


_part_key = StoreFiles.calibration_part


def compute_block(
    store_path: str,
    indices: Sequence[int],
    combinations: Sequence[Combination],
    grid: Sequence[float],
    seed: int,
    full_image: bool,
) -> pa.Table:
    """δ rows of a block of images for every (combination, s); opens the store itself (any process)."""
    store = open_store(store_path)
    spec = FiltrationSpec.from_json(store.persistence_spec)
    idx = np.asarray(indices, dtype=np.int64)
    images = store.array("images").oindex[idx]
    masks = store.array("roi_masks").oindex[idx]
    labels = store.array("labels").oindex[idx]
    h0, n0 = store.array("pd_h0").oindex[idx], store.array("n_h0").oindex[idx]
    h1, n1 = store.array("pd_h1").oindex[idx], store.array("n_h1").oindex[idx]
    cols: dict[str, list] = {f.name: [] for f in PART_SCHEMA}
    for j, i in enumerate(idx):
        image = images[j]
        if image.shape[-1] == 1:
            image = image[..., 0]
        configs = [(c, s, config_rng(seed, int(i), c, s)) for c in combinations for s in grid]
        deltas = _deltas(image, masks[j], (h0[j, : n0[j]], h1[j, : n1[j]]), configs, spec, full_image)
        for (c, s, _), d in zip(configs, deltas, strict=True):
            cols["index"].append(int(i))
            cols["label"].append(int(labels[j]))
            cols["combination"].append(combination_name(c))
            cols["s"].append(float(s))
            cols["delta"].append(d.overall)
            cols["delta_h0"].append(d.h0)
            cols["delta_h1"].append(d.h1)
    return pa.table(cols, schema=PART_SCHEMA)


@ray.remote(num_cpus=1)
def _calibrate_block_task(
    store_path: str,
    block: int,
    indices: list[int],
    combinations: list[Combination],
    grid: list[float],
    seed: int,
    full_image: bool,
) -> int:
    import cv2

    cv2.setNumThreads(1)  # one Ray CPU per task: OpenCV's own thread pool would oversubscribe the node
    table = compute_block(store_path, indices, combinations, grid, seed, full_image)
    # The worker writes its own part atomically, so a block finished before an interruption is never lost.
    write_table_atomic(Path(store_path) / _part_key(block), table)
    return table.num_rows


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} δ/s" if speed else "… δ/s", style="progress.data.speed")

    return Progress(
        TextColumn("[bold]{task.description}[/bold]"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("image×config"),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _run_blocks(
    root: Path,
    blocks: list[list[int]],
    todo: list[int],
    done: set[int],
    combos: list[Combination],
    grid: tuple[float, ...],
    seed: int,
    full_image: bool,
    resources: RayResources,
    progress: bool,
) -> int:
    """Run the unfinished blocks as Ray tasks with backpressure and a progress bar; return δ evaluations."""
    n_cfg = len(combos) * len(grid)
    started = ensure_ray(resources)
    evaluations = 0
    pending: list[ray.ObjectRef] = []
    try:
        max_in_flight = max(1, 2 * cluster_cpus())
        with _progress(progress) as bar:
            task = bar.add_task(
                f"calibrate {root.name}",
                total=sum(len(b) for b in blocks) * n_cfg,
                completed=sum(len(blocks[b]) for b in done) * n_cfg,
            )
            queue = list(todo)
            while queue or pending:
                # Backpressure: at most ~2 tasks per CPU in flight, so a large job does not flood Ray.
                while queue and len(pending) < max_in_flight:
                    b = queue.pop(0)
                    pending.append(
                        _calibrate_block_task.remote(
                            str(root), b, blocks[b], [tuple(c) for c in combos], list(grid), seed, full_image
                        )
                    )
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    rows = int(ray.get(ref))
                    evaluations += rows
                    bar.advance(task, rows)
    except BaseException:
        # Interrupted, or a task failed: finished parts stay (a re-run resumes); stop what is still queued.
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()
    return evaluations
