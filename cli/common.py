"""What every command shares: the consoles, the common options, option defaults, and failing without a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from topo.cli.defaults import config_defaults
from topo.cli.workspace import (
    WORKSPACE_ENV,
    WorkspaceError,
    resolve_store,
    workspace_root,
)
from topo.pipeline.build_config import BuildConfig


def run_key(store: str) -> str:
    return Path(store.rstrip("/")).name.removesuffix(".zarr").removesuffix(".zip")


# Defaults come from the config dataclasses; the options below never restate them.
BUILD = config_defaults(BuildConfig)


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


def error_line(e: BaseException) -> str:
    """One line for an error, also one re-raised from a DataLoader worker.

    torch re-raises a worker's exception in the main process as the same type, with the worker's whole traceback
    in its message ("Caught X in DataLoader worker process 0. Original Traceback ... X: message"); a person needs
    the last line's message, not the worker's stack.
    """
    text = str(e)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        name, sep, message = last.partition(": ")
        text = message if sep and name.replace(".", "").replace("_", "").isalnum() else last
    return " ".join(text.split())


def open_or_fail(path: str) -> Any:
    from topo.store_schema import StoreError, open_store

    try:
        return open_store(path)
    except StoreError as e:
        fail(str(e))


def store_arg(store: str | None, dataset: str | None, workspace: Path | None) -> str:
    try:
        return resolve_store(workspace_root(workspace), store=store, dataset=dataset)
    except WorkspaceError as e:
        fail(str(e))
        raise
