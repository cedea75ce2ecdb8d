"""The ``topo`` command: build-store → calibrate-aug → train → eval, and store utilities."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from topo import __version__
from topo.cli.build_cmd import build_store_cmd
from topo.cli.calibrate_cmd import calibrate_aug_cmd
from topo.cli.common import err, out
from topo.cli.cue_check import cue_check_cmd
from topo.cli.eval_cmds import eval_cmd, export_cmd, fetch_sam_cmd, report_cmd
from topo.cli.store_cmds import store_info, store_verify
from topo.cli.store_extra import export_datalist_cmd, pack_cmd, unpack_cmd
from topo.cli.store_show import show_cmd
from topo.cli.train_cmd import train_cmd

app = typer.Typer(
    name="topo",
    help="Topology-aware self-supervised learning on medical images (TopoCL): persistence feature stores and "
    "contrastive training from them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Inspect, check and move stores.", no_args_is_help=True)
app.add_typer(store_app, name="store")
store_app.command("pack")(pack_cmd)
store_app.command("unpack")(unpack_cmd)
store_app.command("export-datalist")(export_datalist_cmd)
app.command("cue-check")(cue_check_cmd)
store_app.command("show")(show_cmd)


def _version(value: bool) -> None:
    if value:
        out.print(f"topo {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """topo: persistence feature stores and topology-aware contrastive training."""


app.command("build-store")(build_store_cmd)
store_app.command("info")(store_info)
store_app.command("verify")(store_verify)
app.command("calibrate-aug")(calibrate_aug_cmd)
app.command("train")(train_cmd)
app.command("eval")(eval_cmd)
app.command("report")(report_cmd)
app.command("export")(export_cmd)
app.command("fetch-sam")(fetch_sam_cmd)


# --------------------------------------------------------------------------------------------------- later stages
def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted; re-run the same command to resume")
        sys.exit(130)
