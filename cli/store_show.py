"""``topo store show``: a contact sheet of a store's samples, to look at the ROI masks without writing code.

Each cell is the stored image with its ROI contour, the label, split and ROI quality flag, and a thumbnail of the
sample's top-k persistence diagram (H0 blue, H1 orange). Registration (in ``cli/app.py``)::

    from topo.cli.store_show import show_cmd

    store_app.command("show")(show_cmd)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)

CELL_INCHES = 2.2


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def select(manifest: Any, class_names: list[str], *, split: str | None, cls: str | None, quality: str | None) -> Any:
    """Rows of the manifest (a DataFrame) that match the filters; failed samples have no mask to show."""
    m = manifest[manifest["status"] != "failed"]
    if split is not None:
        m = m[m["split"] == split]
    if cls is not None:
        label = class_names.index(cls) if cls in class_names else int(cls) if cls.isdigit() else None
        if label is None:
            raise ValueError(f"unknown class {cls!r}; classes: {', '.join(class_names)}")
        m = m[m["label"] == label]
    if quality is not None:
        q = m["roi_quality"].fillna("")
        m = m[q.str.startswith(quality) | ((m["status"] == quality) if quality == "fallback" else False)]
    return m


def spread(n_rows: int, n: int) -> np.ndarray:
    """``n`` positions spread evenly over ``n_rows`` (deterministic, and not just the first chunk)."""
    if n_rows <= n:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, n).round().astype(int))


def render(st: Any, rows: Any, path: Path, cols: int = 8) -> Path:
    """Draw the cells of ``rows`` (manifest rows of store ``st``) into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(st.attrs["dataset"].get("class_names", []))
    idx = rows["index"].to_numpy()
    cols = min(cols, len(idx))
    nrows = -(-len(idx) // cols)
    fig = plt.figure(figsize=(cols * CELL_INCHES, nrows * CELL_INCHES * 1.25), dpi=80)
    grid = fig.add_gridspec(nrows, cols, wspace=0.05, hspace=0.6)
    images, masks = st.array("images"), st.array("roi_masks")
    pd = {d: (st.array(f"pd_{d}"), st.array(f"n_{d}")) for d in ("h0", "h1")}
    for k, (i, row) in enumerate(zip(idx, rows.itertuples(index=False), strict=True)):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        im = np.asarray(images[int(i)])
        ax.imshow(im[..., 0] if im.shape[-1] == 1 else im, cmap="gray" if im.shape[-1] == 1 else None)
        mask = np.asarray(masks[int(i)])
        if 0 < mask.mean() < 1:
            ax.contour(mask, levels=[0.5], colors="lime", linewidths=1.0)
        quality = row.roi_quality or row.status
        name = names[row.label] if 0 <= row.label < len(names) else str(row.label)
        colour = "black" if quality == "ok" else "crimson"
        ax.set_title(f"#{i} {name} · {row.split}\n{_short(quality)}", fontsize=6, color=colour)
        ax.set_xticks([]), ax.set_yticks([])
        _diagram(ax.inset_axes((0.0, -0.27, 1.0, 0.25)), pd, int(i))
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _short(quality: str) -> str:
    return quality if len(quality) <= 30 else quality[:28] + "…"


def _diagram(ax: Any, pd: dict[str, tuple[Any, Any]], i: int) -> None:
    """Persistence (death − birth) against birth, one strip per sample: H0 blue, H1 orange."""
    for dim, colour in (("h0", "tab:blue"), ("h1", "tab:orange")):
        arr, count = pd[dim]
        pairs = np.asarray(arr[i])[: int(count[i])]
        pairs = pairs[np.isfinite(pairs).all(axis=1)]
        if len(pairs):
            ax.scatter(pairs[:, 0], pairs[:, 1] - pairs[:, 0], s=3, c=colour, linewidths=0)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_xticks([]), ax.set_yticks([])
    for s in ax.spines.values():
        s.set_linewidth(0.4)


def show_cmd(
    out_png: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    store: Annotated[str | None, typer.Option("--store", help="Store path (default: found in the workspace).")] = None,
    n: Annotated[int, typer.Option("--n", help="At most this many samples, spread over the matches.")] = 48,
    split: Annotated[str | None, typer.Option(help="Only this split (train, val, test).")] = None,
    cls: Annotated[str | None, typer.Option("--class", help="Only this class (name or index).")] = None,
    quality: Annotated[
        str | None, typer.Option(help="Only this ROI quality: ok, suspect, or fallback (whole image used).")
    ] = None,
    cols: Annotated[int, typer.Option(help="Cells per row.")] = 8,
) -> None:
    """Write a contact sheet: images with ROI contours, labels, quality flags and H0/H1 diagram thumbnails."""
    from topo.cli.workspace import WorkspaceError, resolve_store, workspace_root
    from topo.store_schema import StoreError, open_store

    if n < 1 or cols < 1:
        _fail("--n and --cols must be at least 1")
    try:
        path = resolve_store(workspace_root(None), store=store, dataset=None)
        st = open_store(path)
        m = st.manifest().to_pandas()
        rows = select(m, list(st.attrs["dataset"].get("class_names", [])), split=split, cls=cls, quality=quality)
    except (StoreError, WorkspaceError, ValueError) as e:
        _fail(str(e))
        return
    if rows.empty:
        _fail("no samples match the filters")
    rows = rows.iloc[spread(len(rows), n)]
    out_png.parent.mkdir(parents=True, exist_ok=True)
    render(st, rows, out_png, cols=cols)
    out.print(f"[green]✓[/] {len(rows)} samples → {escape(str(out_png))}")
