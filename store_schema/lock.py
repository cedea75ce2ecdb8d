"""One writer per store: build-store and calibrate-aug hold a lock file beside the store while they write.

Two jobs writing one store at once (a second terminal, a re-submitted cluster job) would interleave chunk parts or
calibration blocks. The lock is a sibling file ``<store>.lock`` (never inside the store, so it is never packed or
checksummed) created with ``O_EXCL``, holding the owner's host, pid, job and start time. A lock left by a killed job on
this host (its pid no longer runs) is taken over, so a killed job still resumes; a lock from another host can not be
checked and is reported with the path to remove.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from topo.store_schema.errors import StoreError


class StoreLockedError(StoreError):
    """Another job is writing this store."""


def lock_path(store_dir: str | os.PathLike[str]) -> Path:
    """The writer lock of the store at ``store_dir``, beside its real path.

    Resolved (symbolic links, ``..``) so that two spellings of one store -- an alias link, a relative path --
    take the same lock.
    """
    p = Path(os.path.realpath(store_dir))
    return p.with_name(p.name + ".lock")


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def writer_lock(store_dir: str | os.PathLike[str], job: str) -> Iterator[Path]:
    """Hold the store's writer lock for the duration of ``job`` (a short name: "build-store", "calibrate-aug").

    Raises:
        StoreLockedError: another live job holds it (the message names the job, host, pid and the lock file).
    """
    path = lock_path(store_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"job": job, "host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text() or "{}")
            except FileNotFoundError:  # released meanwhile
                continue
            except (OSError, ValueError):
                owner = {}
            same_host = owner.get("host") == me["host"]
            if same_host and isinstance(owner.get("pid"), int) and not process_alive(owner["pid"]):
                path.unlink(missing_ok=True)  # left by a killed job: take it over
                continue
            who = (
                f"{owner.get('job', 'a job')} (pid {owner.get('pid', '?')} on {owner.get('host', '?')}, "
                f"started {owner.get('started', '?')})"
            )
            hint = "wait for it to finish" if same_host else "if that job is gone, remove the lock file"
            raise StoreLockedError(f"{Path(store_dir)} is being written by {who}; {hint}: {path}") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:  # pragma: no cover - only if other jobs keep taking and releasing it between our attempts
        raise StoreLockedError(f"{Path(store_dir)}: could not take the writer lock {path}")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def lease_of_this_process() -> str:
    """The lease a job holding the writer lock hands to its workers: ``host:pid`` of the lock's owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_lease(store_dir: str | os.PathLike[str], lease: str) -> None:
    """Raise unless the store's writer lock is still held by the job that issued ``lease``.

    A Ray task of a driver killed with SIGKILL can outlive it by seconds; once a resumed build has taken the lock
    over, such a task must not write into the store. Workers call this before they write and before they record
    a chunk as done.

    Raises:
        StoreLockedError: the lock is gone or another job holds it.
    """
    path = lock_path(store_dir)
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        owner = {}
    if f"{owner.get('host')}:{owner.get('pid')}" != lease:
        raise StoreLockedError(f"{Path(store_dir)}: the job that started this task no longer holds {path}; not writing")
