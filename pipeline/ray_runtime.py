"""Starting or joining Ray, in one place, so build-store and calibrate-aug treat resources the same way."""

from __future__ import annotations

import logging
import os

import ray

from topo.pipeline.build_config import RayResources


def ensure_ray(res: RayResources) -> bool:
    """Start or join Ray unless it is already up in this process. Returns whether this call started it."""
    if ray.is_initialized():
        return False
    kwargs: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if res.address:
        ray.init(address=res.address, **kwargs)
    else:
        # Worker processes must import the same code as the driver; the installed package makes that true.
        ray.init(num_cpus=res.num_cpus or os.cpu_count(), num_gpus=res.num_gpus or 0, **kwargs)
    return True


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def cluster_gpus() -> int:
    return int(ray.cluster_resources().get("GPU", 0))
