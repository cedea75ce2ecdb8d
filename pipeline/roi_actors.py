"""The long-lived ROI workers of a build: one Ray actor per GPU holding a model-backed backend (SAM).

Backends that hold a model are built once per actor, not once per chunk; the driver sends each actor whole chunks
and a CPU task finishes them (persistence, writing).
"""

from __future__ import annotations

from typing import Any

import ray

from topo.pipeline import chunk as chunk_mod
from topo.pipeline.build_config import BuildError
from topo.pipeline.ray_runtime import cluster_gpus
from topo.pipeline.roi import RoiEntry


def roi_actors(entry: RoiEntry, roi_params: dict[str, Any], cpus: int) -> list[Any]:
    """Long-lived copies of a backend that holds a model: one per GPU, or one on a CPU where there is none."""
    if not entry.on_actors:
        return []
    gpus = cluster_gpus()
    n_actors = max(1, gpus)
    if cpus - (0 if gpus else n_actors) < 1:
        raise BuildError(
            f"{entry.name} on CPU needs at least 2 CPUs (one for its actor, one for persistence); Ray has {cpus}"
        )
    options = {"num_gpus": entry.resources["GPU"], "num_cpus": 0} if gpus else {"num_cpus": 1}
    actor_cls = ray.remote(**options)(_RoiWorker)
    return [actor_cls.options(max_restarts=2, max_task_retries=2).remote(entry, roi_params) for _ in range(n_actors)]


class _RoiWorker:
    """A Ray actor holding one model-backed ROI backend: decodes and masks a chunk, returns what ``finish`` needs."""

    def __init__(self, entry: RoiEntry, params: dict[str, Any]) -> None:
        self.roi = entry.build(**params)

    def prepare(self, task: chunk_mod.ChunkTask, payloads: list) -> list[chunk_mod.Prepared]:
        return chunk_mod.prepare(task, payloads, self.roi)
