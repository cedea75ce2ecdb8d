"""Where stores and runs live when the user names no path.

The workspace is ``--workspace``, else ``$TOPO_WORKSPACE``, else ``./topo-workspace``. Inside it:

* ``stores/<dataset>.zarr`` — one store per dataset name (``demo``, ``isic2019``, ``pathmnist_224``, …);
* ``runs/<dataset>/<method>/<stage>-seed<seed>[-<suffix>]/`` — checkpoints, logs and cached features of one training
  run; the suffix names the options that differ from their defaults (``topo.trainer.config.run_name``), so an
  ablation never lands in the main run's folder, and ``config.json`` holds the full config and its hash;
* ``reports/<dataset>/`` — evaluation tables and figures.

Later commands find the store by ``--store`` (a path or URL), by ``--dataset`` (its name in the workspace), or as
the only store there; when that is ambiguous they list the stores and say how to choose.
"""

from __future__ import annotations

import os
from pathlib import Path

WORKSPACE_ENV = "TOPO_WORKSPACE"
DEFAULT_WORKSPACE = "topo-workspace"


class WorkspaceError(Exception):
    """The store or run the user meant cannot be found unambiguously."""


def workspace_root(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE).expanduser()


def store_name(dataset: str, size: int = 28) -> str:
    from topo.pipeline.sources.medmnist import MEDMNIST_FLAGS

    name = dataset.lower()
    return f"{name}_{size}" if name in MEDMNIST_FLAGS and size != 28 else name


def store_path_for(ws: Path, name: str) -> Path:
    return ws / "stores" / f"{name}.zarr"


def list_stores(ws: Path) -> list[Path]:
    d = ws / "stores"
    return sorted(p for p in d.glob("*.zarr") if (p / "zarr.json").exists()) if d.is_dir() else []


def resolve_store(ws: Path, *, store: str | None = None, dataset: str | None = None) -> str:
    """The store a command should read: explicit path/URL, named dataset, or the only one in the workspace."""
    if store:
        return store
    if dataset:
        p = store_path_for(ws, store_name(dataset))
        if not p.exists():
            found = ", ".join(s.stem for s in list_stores(ws)) or "none"
            raise WorkspaceError(
                f"no store for dataset {dataset!r} in {ws / 'stores'} (stores there: {found}); "
                f"build it with `topo build-store --dataset {dataset}` or pass --store PATH"
            )
        return str(p)
    stores = list_stores(ws)
    if len(stores) == 1:
        return str(stores[0])
    if not stores:
        raise WorkspaceError(
            f"no store in workspace {ws}; build one with `topo build-store --dataset NAME` "
            f"(or set --workspace / ${WORKSPACE_ENV}, or pass --store PATH)"
        )
    names = ", ".join(s.stem for s in stores)
    raise WorkspaceError(f"several stores in {ws / 'stores'}: {names}; choose one with --dataset NAME or --store PATH")


def default_data_dir(ws: Path, dataset: str, download: bool = False) -> str | None:
    """Where a dataset's files are looked for without ``--data-dir``: ``<workspace>/data/<dataset>``.

    MedMNIST subsets share ``<workspace>/data/medmnist`` (the ``medmnist`` package's own ``~/.medmnist`` when that
    folder does not exist and nothing is to be downloaded); the demo needs no files.
    """
    from topo.pipeline.sources.medmnist import MEDMNIST_FLAGS

    name = dataset.lower()
    if name == "demo":
        return None
    if name in MEDMNIST_FLAGS:
        d = ws / "data" / "medmnist"
        return str(d) if d.is_dir() or download else None
    return str(ws / "data" / name)


def run_dir(ws: Path, dataset: str, method: str, name: str) -> Path:
    """The folder of the run named ``name`` (see ``topo.trainer.config.run_name``)."""
    return ws / "runs" / dataset / method / name
