"""Starting or joining Ray, in one place, so build-store and calibrate-aug treat resources the same way."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

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
        with _quiet_default_token_auth():
            ray.init(num_cpus=res.num_cpus or os.cpu_count(), num_gpus=res.num_gpus or 0, **kwargs)
    return True


class _DropTokenAuthNotice(logging.Filter):
    """Drops Ray's "token authentication is enabled" notice, printed on every local start with the default."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


@contextmanager
def _quiet_default_token_auth() -> Iterator[None]:
    """While starting a local Ray only: its default (token auth on, which we keep) is not news to our users.

    Joining a cluster (``--address``) keeps every Ray message: there the auth mode is the cluster owner's choice.
    """
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    f = _DropTokenAuthNotice()
    log.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def cluster_gpus() -> int:
    return int(ray.cluster_resources().get("GPU", 0))
