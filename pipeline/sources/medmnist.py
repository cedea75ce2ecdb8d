"""MedMNIST (v2 / MedMNIST+) subsets through the ``medmnist`` package's own file names and metadata.

``--data-dir`` holds already-downloaded files named as ``medmnist`` names them (``pathmnist.npz`` for 28²,
``pathmnist_224.npz`` for 224²); ``--download`` asks the ``medmnist`` package to fetch them first. Nothing is
downloaded otherwise.
"""

from __future__ import annotations

from pathlib import Path

from topo.pipeline.sources.base import SourceError
from topo.pipeline.sources.npz import NpzSource

MEDMNIST_FLAGS = (
    "pathmnist",
    "octmnist",
    "organsmnist",
    "organamnist",
    "organcmnist",
    "breastmnist",
    "pneumoniamnist",
    "dermamnist",
    "bloodmnist",
    "retinamnist",
    "tissuemnist",
)
SIZES = (28, 64, 128, 224)


def medmnist_filename(flag: str, size: int) -> str:
    """The file name the ``medmnist`` package uses for ``flag`` at ``size`` (no suffix at 28)."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def medmnist_source(flag: str, *, data_dir: str | Path | None, size: int = 28, download: bool = False) -> NpzSource:
    """A MedMNIST subset as an :class:`NpzSource`, with the package's class names and licence."""
    import medmnist
    from medmnist import INFO

    if flag not in MEDMNIST_FLAGS:
        raise SourceError(f"unknown MedMNIST subset {flag!r}; valid: {', '.join(MEDMNIST_FLAGS)}")
    if size not in SIZES:
        raise SourceError(f"MedMNIST size must be one of {SIZES}, got {size}")
    info = INFO[flag]
    if info["task"] == "multi-label, binary-class":
        raise SourceError(f"{flag} is multi-label; topo stores single-label classification data")
    root = Path(data_dir).expanduser() if data_dir else Path.home() / ".medmnist"
    fname = medmnist_filename(flag, size)
    if download:
        root.mkdir(parents=True, exist_ok=True)
        getattr(medmnist, info["python_class"])(split="train", root=str(root), download=True, size=size)
    path = root / fname
    if not path.is_file():
        raise SourceError(
            f"{flag} at {size}² not found: expected {path}. Put the file medmnist downloads "
            f"({fname}) in --data-dir, or add --download to fetch it (needs internet)."
        )
    labels = info["label"]
    return NpzSource(
        path,
        name=flag if size == 28 else f"{flag}_{size}",
        class_names=[labels[str(i)] for i in range(len(labels))],
        license=info["license"],
        description=info["description"].split(".")[0],
        id_prefix=f"{flag}_{size}",
    )
