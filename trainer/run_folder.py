"""A run folder belongs to one training process and one configuration.

:func:`claim_run_folder` takes an exclusive lock file in the folder (so two trainings into one folder are
refused, not interleaved), then refuses a folder that already holds a run unless the caller resumes it or
asks to overwrite it. A lock left by a process that no longer exists on this machine is taken over.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from topo.store_schema.lock import process_alive

LOCK = ".lock"
# What a run writes; --overwrite removes exactly these, nothing else a user may have put there.
RUN_FILES = ("checkpoints", "tb", "features", "log.csv", "config.json", "summary.json")


class RunFolderError(Exception):
    """The run folder is in use by another training, or holds a run that must not be replaced silently."""


def _take_lock(path: Path) -> None:
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid_s, _, host = path.read_text().partition(" ")
            pid = int(pid_s) if pid_s.strip().isdigit() else -1
            if host.strip() != socket.gethostname() or process_alive(pid):
                raise RunFolderError(
                    f"{path.parent} is being written by another training (process {pid_s.strip()} on "
                    f"{host.strip() or '?'}); wait for it to finish or choose another run"
                ) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return
    raise RunFolderError(f"could not take the lock {path}")


def holds_run(out_dir: Path) -> bool:
    """Whether ``out_dir`` already holds (part of) a training run."""
    return any((out_dir / name).exists() for name in RUN_FILES)


@contextmanager
def claim_run_folder(out_dir: Path, *, resume: bool, overwrite: bool, main: bool = True) -> Iterator[None]:
    """Hold ``out_dir`` for one training; refuse an existing run unless ``resume`` or ``overwrite``.

    Args:
        out_dir: The run folder.
        resume: Continue the run there (its configuration is checked against the checkpoint later).
        overwrite: Delete the run's files there first.
        main: Whether this is the main process (other ranks of a distributed run neither lock nor delete).
    """
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other")
    if not main:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / LOCK
    _take_lock(lock)
    try:
        if holds_run(out_dir) and not resume:
            if not overwrite:
                raise RunFolderError(
                    f"{out_dir} already holds a run; pass --resume to continue it or --overwrite to replace it "
                    "(runs with other options get their own folder)"
                )
            for name in RUN_FILES:
                p = out_dir / name
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        yield
    finally:
        lock.unlink(missing_ok=True)
