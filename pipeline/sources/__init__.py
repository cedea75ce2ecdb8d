"""Dataset sources, by the name users type after ``--dataset`` (the registry: :mod:`.registry`).

=================  ==========================================================================================
name               reads
=================  ==========================================================================================
``demo``           BreastMNIST 28² shipped inside the package (CC BY 4.0; see ``topo/pipeline/data/README.md``)
MedMNIST flags     ``pathmnist``, ``octmnist``, ``organsmnist``, … at ``--size`` 28/64/128/224 from ``--data-dir``
``isic2019``       the official ISIC 2019 files in ``--data-dir``
``kvasir``         Kvasir v1/v2 class folders in ``--data-dir``
``folder``         any ``<class>/<image>`` tree in ``--data-dir``
``npz``            any MedMNIST-layout ``.npz`` file given as ``--data-dir``
``synthetic-betti`` generated 1–4-hole grey images, class = Betti-1 (no files; :mod:`.synthetic_betti`)
=================  ==========================================================================================
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from topo.pipeline.sources.base import (
    Payload,
    ReadFailure,
    SampleRecord,
    Source,
    SourceError,
    SourceInfo,
    stratified_split,
)
from topo.pipeline.sources.folder import folder_source, kvasir_source
from topo.pipeline.sources.isic import isic2019_source
from topo.pipeline.sources.medmnist import MEDMNIST_FLAGS, medmnist_source
from topo.pipeline.sources.npz import NpzSource
from topo.pipeline.sources.registry import SOURCES, SourceEntry, get_source, register_source, source_names
from topo.pipeline.sources.synthetic_betti import SyntheticBettiSource

DEMO_DATASET = "demo"

__all__ = [
    "DATASETS",
    "DEMO_DATASET",
    "SOURCES",
    "Payload",
    "ReadFailure",
    "SampleRecord",
    "Source",
    "SourceEntry",
    "SourceError",
    "SourceInfo",
    "demo_path",
    "get_source",
    "register_source",
    "source_names",
    "stratified_split",
]


def demo_path() -> Path:
    """The BreastMNIST file embedded in the package."""
    return Path(str(resources.files("topo.pipeline") / "data" / "breastmnist.npz"))


def _demo(name: str, **_: Any) -> Source:
    return medmnist_source("breastmnist", data_dir=demo_path().parent, size=28)


def _medmnist(name: str, *, data_dir: Any, size: int, download: bool, **_: Any) -> Source:
    return medmnist_source(name, data_dir=data_dir, size=size, download=download)


def _npz(name: str, *, data_dir: Any, **_: Any) -> Source:
    p = Path(data_dir)
    return NpzSource(p, name=p.stem)


# One line per source. Factories take (name, *, data_dir, size, download, seed); see registry.SourceFactory.
register_source(SourceEntry(DEMO_DATASET, _demo, "BreastMNIST 28² shipped in the package", needs_data_dir=False))
register_source(
    SourceEntry(
        MEDMNIST_FLAGS[0],
        _medmnist,
        "a MedMNIST flag (pathmnist, octmnist, …) at --size 28/64/128/224",
        needs_data_dir=False,
        downloadable=True,
        aliases=MEDMNIST_FLAGS[1:],
    )
)
register_source(
    SourceEntry("isic2019", lambda n, *, data_dir, seed, **_: isic2019_source(data_dir, seed=seed), "ISIC 2019 files")
)
register_source(
    SourceEntry("kvasir", lambda n, *, data_dir, seed, **_: kvasir_source(data_dir, seed=seed), "Kvasir v1/v2 folders")
)
register_source(
    SourceEntry("folder", lambda n, *, data_dir, seed, **_: folder_source(data_dir, seed=seed), "<class>/<image> tree")
)
register_source(SourceEntry("npz", _npz, "a MedMNIST-layout .npz file as --data-dir"))
register_source(
    SourceEntry(
        "synthetic-betti",
        lambda n, *, seed, size, **_: SyntheticBettiSource(seed=seed, size=size),
        "generated grey sheets with 1-4 holes (class = Betti-1), from --seed at --size",
        needs_data_dir=False,
    )
)

DATASETS: tuple[str, ...] = source_names()
"""Every ``--dataset`` name registered at import (sources registered later are in :func:`source_names`)."""
