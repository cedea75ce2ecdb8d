"""``topo store pack | unpack | export-datalist``: command functions the ``store`` sub-app registers.

Registration (in ``cli/app.py``)::

    from topo.cli.store_extra import export_datalist_cmd, pack_cmd, unpack_cmd

    store_app.command("pack")(pack_cmd)
    store_app.command("unpack")(unpack_cmd)
    store_app.command("export-datalist")(export_datalist_cmd)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def pack_cmd(
    store: Annotated[str, typer.Argument(help="Finished store directory.")],
    out_zip: Annotated[Path, typer.Argument(help="Zip file to write (must end in .zip).")],
    overwrite: Annotated[bool, typer.Option(help="Replace OUT_ZIP if it exists.")] = False,
    verify: Annotated[bool, typer.Option(help="Check every chunk against its checksum first.")] = False,
) -> None:
    """Pack a finished store into one zip file that topo reads in place (open_store("x.zip"))."""
    from topo.store_schema import StoreError
    from topo.store_schema.pack import pack_store

    try:
        r = pack_store(store, out_zip, overwrite=overwrite, verify=verify)
    except (StoreError, OSError) as e:
        _fail(str(e))
        return
    out.print(
        f"[green]✓[/] packed {escape(store)} → {escape(str(r.path))}: {r.members} files, "
        f"{r.bytes / 1e6:.1f} MB, fingerprint {r.fingerprint}"
    )
    if r.skipped:
        err.print(f"[yellow]left out[/] {len(r.skipped)} temporary file(s): {escape(', '.join(r.skipped[:5]))}")


def unpack_cmd(
    zip_path: Annotated[Path, typer.Argument(help="Packed store (.zip).")],
    out_dir: Annotated[Path, typer.Argument(help="Directory to create (must not exist or be empty).")],
    verify: Annotated[bool, typer.Option(help="Check every chunk against its checksum after unpacking.")] = True,
) -> None:
    """Safely unpack a packed store: unsafe members (absolute, '..', links) are refused, by name."""
    from topo.store_schema import StoreError, open_store
    from topo.store_schema.pack import unpack_store

    try:
        target = unpack_store(zip_path, out_dir, verify=verify)
        fp = open_store(target).fingerprint
    except (StoreError, OSError) as e:
        _fail(str(e))
        return
    checked = "verified, " if verify else ""
    out.print(f"[green]✓[/] unpacked {escape(str(zip_path))} → {escape(str(target))} ({checked}fingerprint {fp})")


def export_datalist_cmd(
    store: Annotated[str, typer.Argument(help="Store path or URL (a finished build).")],
    out_json: Annotated[Path, typer.Argument(help="JSON file to write.")],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split(s) to export, repeatable (default: all).")
    ] = None,
    store_ref: Annotated[
        str | None, typer.Option(help="What items name as their store (default: its absolute path or URL).")
    ] = None,
    include_failed: Annotated[bool, typer.Option(help="Also list samples whose build failed.")] = False,
) -> None:
    """Write a MONAI-style datalist ({"training": [...], "validation": [...], "test": [...]})."""
    from topo.store_schema import StoreError
    from topo.store_schema.datalist import export_datalist

    try:
        doc = export_datalist(store, out_json, split or None, usable_only=not include_failed, store_ref=store_ref)
    except (StoreError, ValueError, OSError) as e:
        _fail(str(e))
        return
    counts = ", ".join(f"{k}: {len(v)}" for k, v in doc.items() if isinstance(v, list))
    out.print(f"[green]✓[/] wrote {escape(str(out_json))} ({counts}; fingerprint {doc['fingerprint']})")
