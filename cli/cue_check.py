"""``topo cue-check``: logistic regression on raw pixels vs on diagram features, before any training.

Registration (in ``cli/app.py``)::

    from topo.cli.cue_check import cue_check_cmd

    app.command("cue-check")(cue_check_cmd)
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


def cue_check_cmd(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="A generated dataset: synthetic-betti.")] = (
        "synthetic-betti"
    ),
    size: Annotated[int, typer.Option(help="Image size.")] = 28,
    seed: Annotated[int, typer.Option(help="Generator seed (as build-store's --split-seed).")] = 0,
    n_train: Annotated[int | None, typer.Option(help="Train images (default: the dataset's train split).")] = None,
    n_test: Annotated[int | None, typer.Option(help="Test images (default: the dataset's test split).")] = None,
) -> None:
    """Is the label carried by topology? Pixel and diagram-feature logistic regression, train -> test ACC."""
    from topo.pipeline.cue_check import cue_check
    from topo.pipeline.sources import SourceError
    from topo.pipeline.sources.synthetic_betti import NAME, SPLIT_SIZES, SyntheticBettiSource

    if dataset != NAME:
        err.print(f"[bold red]error:[/] cue-check generates its images; only --dataset {NAME} is supported")
        raise typer.Exit(2)
    sizes = {"train": n_train or SPLIT_SIZES["train"], "test": n_test or SPLIT_SIZES["test"]}
    try:
        src = SyntheticBettiSource(seed=seed, size=size, sizes=sizes)
    except SourceError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(2) from None
    res = cue_check(*src.arrays("train"), *src.arrays("test"))
    out.print(f"{NAME} (seed {seed}, {size}²)")
    for line in res.lines():
        out.print(escape(line))
