"""Dataset sources, by the name users type after ``--dataset``.

=================  ==========================================================================================
name               reads
=================  ==========================================================================================
``demo``           BreastMNIST 28² shipped inside the package (CC BY 4.0; see ``topo/pipeline/data/README.md``)
MedMNIST flags     ``pathmnist``, ``octmnist``, ``organsmnist``, … at ``--size`` 28/64/128/224 from ``--data-dir``
``isic2019``       the official ISIC 2019 files in ``--data-dir``
``kvasir``         Kvasir v1/v2 class folders in ``--data-dir``
``folder``         any ``<class>/<image>`` tree in ``--data-dir``
``npz``            any MedMNIST-layout ``.npz`` file given as ``--data-dir``
=================  ==========================================================================================
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

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

DEMO_DATASET = "demo"
DATASETS: tuple[str, ...] = (DEMO_DATASET, *MEDMNIST_FLAGS, "isic2019", "kvasir", "folder", "npz")

__all__ = [
    "DATASETS",
    "DEMO_DATASET",
    "Payload",
    "ReadFailure",
    "SampleRecord",
    "Source",
    "SourceError",
    "SourceInfo",
    "demo_path",
    "get_source",
    "stratified_split",
]


def demo_path() -> Path:
    """The BreastMNIST file embedded in the package."""
    return Path(str(resources.files("topo.pipeline") / "data" / "breastmnist.npz"))


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
    if name == DEMO_DATASET:
        return medmnist_source("breastmnist", data_dir=demo_path().parent, size=28)
    if name in MEDMNIST_FLAGS:
        return medmnist_source(name, data_dir=data_dir, size=size, download=download)
    if download:
        raise SourceError(f"--download is only available for MedMNIST subsets, not {dataset!r}")
    if name in ("isic2019", "kvasir", "folder", "npz") and data_dir is None:
        raise SourceError(f"--dataset {name} needs --data-dir (where the files are)")
    if name == "isic2019":
        return isic2019_source(data_dir, seed=seed)  # type: ignore[arg-type]
    if name == "kvasir":
        return kvasir_source(data_dir, seed=seed)  # type: ignore[arg-type]
    if name == "folder":
        return folder_source(data_dir, seed=seed)  # type: ignore[arg-type]
    if name == "npz":
        p = Path(data_dir)  # type: ignore[arg-type]
        return NpzSource(p, name=p.stem)
    raise SourceError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
