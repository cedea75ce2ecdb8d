"""The registry of dataset sources: one entry per name users type after ``--dataset``.

A new source is one module with a factory plus one :func:`register_source` call (or one line in
:mod:`topo.pipeline.sources`); the CLI's ``--dataset`` help and the error for an unknown name come from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from topo.pipeline.sources.base import Source, SourceError

SourceFactory = Callable[..., Source]
"""``factory(name, *, data_dir, size, download, seed) -> Source``: ``name`` is what the user typed."""


@dataclass(frozen=True)
class SourceEntry:
    """One registered source.

    Attributes:
        name: the ``--dataset`` name (lower case); ``aliases`` name the same source.
        factory: builds the :class:`~topo.pipeline.sources.base.Source`.
        help: one line for ``topo build-store --help``.
        needs_data_dir: refuse without ``--data-dir`` (with a message saying so).
        downloadable: ``--download`` is allowed.
        aliases: further names, e.g. every MedMNIST flag.
    """

    name: str
    factory: SourceFactory
    help: str
    needs_data_dir: bool = True
    downloadable: bool = False
    aliases: tuple[str, ...] = ()


SOURCES: dict[str, SourceEntry] = {}
"""Every source by each of its names (aliases included)."""


def register_source(entry: SourceEntry) -> SourceEntry:
    """Add ``entry`` under its name and aliases; a name already taken by another source is an error."""
    for key in (entry.name, *entry.aliases):
        key = key.lower()
        if key in SOURCES and SOURCES[key] is not entry:
            raise ValueError(f"dataset source {key!r} is already registered")
        SOURCES[key] = entry
    return entry


def source_names() -> tuple[str, ...]:
    """Every accepted ``--dataset`` name, in registration order."""
    return tuple(SOURCES)


def sources_help() -> str:
    """A short help text listing each source once (aliases summarised)."""
    seen: list[SourceEntry] = []
    for e in SOURCES.values():
        if e not in seen:
            seen.append(e)
    # A family of names (the MedMNIST flags) is described by its help alone, which names its members.
    return "; ".join(e.help if e.aliases else f"{e.name}: {e.help}" for e in seen)


def get_source(
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    size: int = 28,
    download: bool = False,
    seed: int = 0,
) -> Source:
    """The source for ``dataset``; :class:`SourceError` with the valid names or the expected files otherwise."""
    name = dataset.lower()
    entry = SOURCES.get(name)
    if entry is None:
        raise SourceError(f"unknown dataset {dataset!r}; valid: {', '.join(source_names())}")
    if download and not entry.downloadable:
        raise SourceError(f"--download is only available for MedMNIST subsets, not {dataset!r}")
    if entry.needs_data_dir and data_dir is None:
        raise SourceError(f"--dataset {name} needs --data-dir (where the files are)")
    return entry.factory(name, data_dir=data_dir, size=size, download=download, seed=seed)
