"""Options and checks that several ``topo`` commands share: the store argument, the backbone name, full values.

Every command names its store with ``--store``; ``store info`` and ``store verify`` also still accept the store
as a positional argument (the older spelling), with a note on stderr.
"""

from __future__ import annotations

import difflib
from typing import Annotated

import typer
from rich.console import Console

StorePositional = Annotated[
    str | None,
    typer.Argument(
        help="Deprecated spelling of --store: the store path or URL.", show_default=False, metavar="[STORE]"
    ),
]
StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Store path or URL (default: the one found in the workspace)."),
]


def pick_store(positional: str | None, option: str | None, err: Console) -> str | None:
    """The store named by ``--store`` or, deprecated, positionally; both at once must agree."""
    if positional is not None and option is not None and positional != option:
        err.print(f"[bold red]error:[/] two stores given: {positional} (positional) and --store {option}")
        raise typer.Exit(2)
    if positional is not None:
        err.print("[yellow]note:[/] a positional store is deprecated; write --store " + positional)
    return option if option is not None else positional


def backbone_problem(name: str) -> str | None:
    """Why ``name`` is not a timm model this topo can build (with the closest names), or ``None``."""
    import timm

    if timm.is_model(name):
        return None
    names = timm.list_models()
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for the names"
    return f"unknown --backbone {name!r}: not a timm model; {hint}"


def print_full(console: Console, label: str, value: str) -> None:
    """One ``label value`` line printed whole: never wrapped or cut, whatever the terminal width."""
    console.print(f"{label} {value}", soft_wrap=True, markup=False, highlight=False)
