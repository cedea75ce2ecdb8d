"""Extracted feature arrays: the validated input of every evaluation in this package.

A :class:`FeatureSet` is one split (``"train"``, ``"val"`` or ``"test"``) of frozen-encoder features
with integer labels. Evaluation code decides what it may do with a set from its ``split`` name (for
example, hyper-parameters may never be chosen on ``"test"``), so the name is validated here.

On disk a collection of sets is a directory of plain ``.npy`` files plus one small JSON index
(``features.json``); nothing is pickled and loading uses ``np.load(..., allow_pickle=False)``, so a
feature directory received from someone else cannot execute code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FEATURES_INDEX",
    "SPLITS",
    "FeatureSet",
    "check_disjoint",
    "load_feature_meta",
    "load_features",
    "save_features",
]

#: The split names a :class:`FeatureSet` may carry.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Name of the JSON index written by :func:`save_features`.
FEATURES_INDEX = "features.json"

_FORMAT = "topo.features"
_FORMAT_VERSION = 1


def _readonly_view(a: np.ndarray) -> np.ndarray:
    # A read-only *view* protects the set's contents from consumers without copying
    # (feature matrices can be hundreds of MB) and without changing the caller's array.
    v = a.view()
    v.flags.writeable = False
    return v


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """One split of extracted features with labels.

    The arrays are validated and stored as read-only views (float32 / int64 are converted once if
    needed; no copy is made when the input already has the right dtype). Mutating the caller's
    original array afterwards is not detected, so do not do that. Sets compare by identity (array
    contents have no single truth value); compare :attr:`fingerprint` for content equality.

    Attributes:
        split: One of :data:`SPLITS` (``"train"``, ``"val"``, ``"test"``).
        x: Features, shape ``(N, D)``, float32, all finite, ``N >= 1``, ``D >= 1``.
        y: Class labels, shape ``(N,)``, int64, each ``>= 0``.
        sample_ids: Optional per-sample identifiers, shape ``(N,)``, integer or unicode string dtype
            (no object arrays), all distinct. Used to check that splits do not share samples.

    Raises:
        ValueError: On a bad split name, shape, dtype, a non-finite feature, a negative or
            non-integer label, or duplicate sample ids.
    """

    split: str
    x: np.ndarray
    y: np.ndarray
    sample_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.split, str) or self.split not in SPLITS:
            raise ValueError(f"FeatureSet.split must be one of {SPLITS}, got {self.split!r}")

        x = np.asarray(self.x)
        if x.ndim != 2:
            raise ValueError(f"FeatureSet.x must have shape (N, D), got shape {x.shape}")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"FeatureSet.x must have N >= 1 rows and D >= 1 columns, got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"FeatureSet.x must be a real numeric array, got dtype {x.dtype}")
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                f"FeatureSet.x ({self.split!r}) contains non-finite values (first at row {bad[0]}, "
                f"column {bad[1]}); features must be finite"
            )

        y = np.asarray(self.y)
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"FeatureSet.y must have shape (N,) = ({x.shape[0]},), got shape {y.shape}")
        if np.issubdtype(y.dtype, np.floating):
            # Labels stored as floats are common (e.g. from torch); accept them only if integral.
            if not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
                raise ValueError("FeatureSet.y must hold integer class labels, got non-integral floats")
        elif not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"FeatureSet.y must be an integer array, got dtype {y.dtype}")
        if y.dtype != np.int64:
            y = y.astype(np.int64)
        if (y < 0).any():
            raise ValueError(f"FeatureSet.y must be >= 0, got minimum {int(y.min())}")

        ids = self.sample_ids
        if ids is not None:
            ids = np.asarray(ids)
            if ids.ndim != 1 or ids.shape[0] != x.shape[0]:
                raise ValueError(f"FeatureSet.sample_ids must have shape (N,) = ({x.shape[0]},), got shape {ids.shape}")
            if ids.dtype.kind not in "iuU":
                raise ValueError(
                    f"FeatureSet.sample_ids must have an integer or unicode string dtype, got {ids.dtype} "
                    "(object arrays would need pickle to store)"
                )
            if np.unique(ids).shape[0] != ids.shape[0]:
                raise ValueError("FeatureSet.sample_ids must be distinct within a split")
            ids = _readonly_view(ids)

        object.__setattr__(self, "x", _readonly_view(x))
        object.__setattr__(self, "y", _readonly_view(y))
        object.__setattr__(self, "sample_ids", ids)

    @property
    def n(self) -> int:
        """Number of samples ``N``."""
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        """Feature dimension ``D``."""
        return int(self.x.shape[1])

    @cached_property
    def fingerprint(self) -> str:
        """Content hash (BLAKE2b, hex) of ``x`` and ``y``; independent of the split name.

        Used to tie a hyper-parameter selection to the exact training data it was made on and to
        catch the same array being passed as two different splits.
        """
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.x.shape, self.y.shape)).encode())
        h.update(np.ascontiguousarray(self.x).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        ids = "None" if self.sample_ids is None else f"array({self.sample_ids.shape[0]})"
        return f"FeatureSet(split={self.split!r}, x={self.x.shape}, y={self.y.shape}, sample_ids={ids})"


def check_disjoint(a: FeatureSet, b: FeatureSet) -> None:
    """Refuse two sets that evidently share samples.

    Two checks, both cheap: identical content (same fingerprint, e.g. the training array passed again
    as the test split), and, when both sets carry ``sample_ids``, any shared id.

    Args:
        a: First set.
        b: Second set.

    Raises:
        ValueError: If the sets share samples.
    """
    if a.fingerprint == b.fingerprint:
        raise ValueError(f"splits {a.split!r} and {b.split!r} hold identical features and labels")
    if a.sample_ids is not None and b.sample_ids is not None:
        if (a.sample_ids.dtype.kind == "U") != (b.sample_ids.dtype.kind == "U"):
            return  # string ids and integer ids cannot collide
        shared = np.intersect1d(a.sample_ids, b.sample_ids)
        if shared.size:
            raise ValueError(
                f"splits {a.split!r} and {b.split!r} share {shared.size} sample id(s), e.g. {shared[:3].tolist()}"
            )


def _as_set_mapping(sets: Mapping[str, FeatureSet] | Iterable[FeatureSet]) -> dict[str, FeatureSet]:
    if isinstance(sets, Mapping):
        out: dict[str, FeatureSet] = {}
        for key, fs in sets.items():
            if not isinstance(fs, FeatureSet):
                raise ValueError(f"sets[{key!r}] must be a FeatureSet, got {type(fs).__name__}")
            if key != fs.split:
                raise ValueError(f"sets key {key!r} does not match the set's split {fs.split!r}")
            out[key] = fs
        return out
    out = {}
    for fs in sets:
        if not isinstance(fs, FeatureSet):
            raise ValueError(f"sets must contain FeatureSet objects, got {type(fs).__name__}")
        if fs.split in out:
            raise ValueError(f"two FeatureSets with split {fs.split!r}; each split may appear once")
        out[fs.split] = fs
    return out


def save_features(
    path_dir: str | Path,
    sets: Mapping[str, FeatureSet] | Iterable[FeatureSet],
    *,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write feature sets as ``.npy`` files plus a JSON index.

    Layout: ``<split>_x.npy``, ``<split>_y.npy`` and, when present, ``<split>_ids.npy`` for each split,
    then ``features.json`` (written last, so a directory without it is an incomplete write).

    Args:
        path_dir: Target directory (created if missing).
        sets: ``{split: FeatureSet}`` or an iterable of sets with distinct splits.
        meta: Optional JSON-serialisable provenance (encoder checkpoint, dataset, seed, ...),
            stored under ``"meta"`` in the index.
        overwrite: Replace an existing feature directory; otherwise refuse.

    Returns:
        The directory path.

    Raises:
        ValueError: On empty ``sets``, mismatched keys, non-JSON ``meta``.
        FileExistsError: If the directory already holds ``features.json`` and ``overwrite`` is False.
    """
    mapping = _as_set_mapping(sets)
    if not mapping:
        raise ValueError(f"sets is empty; give at least one FeatureSet (splits {SPLITS})")
    try:
        meta_json = json.loads(json.dumps(dict(meta or {}), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must be JSON-serialisable (finite numbers, str keys): {exc}") from exc

    root = Path(path_dir)
    index_path = root / FEATURES_INDEX
    if index_path.exists() and not overwrite:
        raise FileExistsError(f"{index_path} exists; pass overwrite=True to replace it")
    root.mkdir(parents=True, exist_ok=True)
    if index_path.exists():
        index_path.unlink()  # an interrupted overwrite must not look complete

    splits: dict[str, Any] = {}
    for split, fs in mapping.items():
        entry: dict[str, Any] = {"n": fs.n, "dim": fs.dim, "x": f"{split}_x.npy", "y": f"{split}_y.npy"}
        np.save(root / entry["x"], np.ascontiguousarray(fs.x), allow_pickle=False)
        np.save(root / entry["y"], np.ascontiguousarray(fs.y), allow_pickle=False)
        if fs.sample_ids is not None:
            entry["ids"] = f"{split}_ids.npy"
            np.save(root / entry["ids"], np.ascontiguousarray(fs.sample_ids), allow_pickle=False)
        entry["fingerprint"] = fs.fingerprint
        splits[split] = entry

    index = {"format": _FORMAT, "version": _FORMAT_VERSION, "splits": splits, "meta": meta_json}
    tmp = root / (FEATURES_INDEX + ".tmp")
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True))
    tmp.replace(index_path)
    return root


def _read_index(root: Path) -> dict[str, Any]:
    index_path = root / FEATURES_INDEX
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} not found: not a feature directory written by save_features")
    index = json.loads(index_path.read_text())
    if index.get("format") != _FORMAT or index.get("version") != _FORMAT_VERSION:
        raise ValueError(
            f"{index_path}: unsupported format {index.get('format')!r} version {index.get('version')!r}; "
            f"expected {_FORMAT!r} version {_FORMAT_VERSION}"
        )
    return index


def load_features(path_dir: str | Path) -> dict[str, FeatureSet]:
    """Load the feature sets written by :func:`save_features`.

    Args:
        path_dir: Directory holding ``features.json``.

    Returns:
        ``{split: FeatureSet}`` in the order they were saved.

    Raises:
        FileNotFoundError: If the index or an array file is missing.
        ValueError: If the index is of another format, an array disagrees with the index (shape or
            content fingerprint), or an array fails :class:`FeatureSet` validation.
    """
    root = Path(path_dir)
    index = _read_index(root)
    out: dict[str, FeatureSet] = {}
    for split, entry in index["splits"].items():
        x = np.load(root / entry["x"], allow_pickle=False)
        y = np.load(root / entry["y"], allow_pickle=False)
        ids = np.load(root / entry["ids"], allow_pickle=False) if "ids" in entry else None
        if x.ndim != 2 or x.shape != (entry["n"], entry["dim"]):
            raise ValueError(
                f"{root / entry['x']}: shape {x.shape} disagrees with the index ({entry['n']}, {entry['dim']})"
            )
        fs = FeatureSet(split=split, x=x, y=y, sample_ids=ids)
        if "fingerprint" in entry and fs.fingerprint != entry["fingerprint"]:
            raise ValueError(f"{root}: split {split!r} content does not match its recorded fingerprint")
        out[split] = fs
    return out


def load_feature_meta(path_dir: str | Path) -> dict[str, Any]:
    """Return the ``meta`` dictionary stored by :func:`save_features` (empty if none was given).

    Args:
        path_dir: Directory holding ``features.json``.

    Returns:
        The provenance dictionary.
    """
    return dict(_read_index(Path(path_dir)).get("meta") or {})
