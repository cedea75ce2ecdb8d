"""Persistence diagrams in the formats the TDA ecosystem expects, read from a store.

The store keeps fixed-size, zero-padded top-k arrays with every infinite death capped at the largest
filtration value inside the ROI (see :mod:`topo.store_schema.filtration`). TDA tools expect something else:

* **GUDHI / ripser / persim** (:func:`read_diagrams`): per sample a list ``[H0 (n, 2), H1 (n, 2)]`` of
  float64 arrays holding only the valid rows, with ``inf`` as the death of every essential class -- exactly
  what ``gudhi.sklearn.cubical_persistence.CubicalPersistence`` returns for one image, so
  ``gudhi.representations`` (``DiagramSelector(use=True)`` first, to drop the infinite points),
  PersistenceImage, Landscape, BettiCurve and persim take them directly.
* **persim** (:func:`to_persim`): the same per-dimension arrays without ``inf`` (dropped, or clipped to a finite
  death), each ``(n, 2)`` even when empty, as ``persim.bottleneck`` / ``wasserstein`` expect.
* **giotto-tda** (:func:`to_giotto`): one padded ``(n_samples, n_points, 3)`` array of ``[birth, death, dim]``
  rows with a finite stand-in for ``inf``, padded the way giotto pads.

Which rows were infinite before capping. With ``+inf`` outside the ROI, GUDHI reports one infinite H0 bar
per 8-connected component of the ROI (born at that component's minimum). H1 deaths are finite when the ROI
has no holes (the Otsu backend fills them); a ROI with holes (possible with SAM) has H1 classes around each hole
that die only when the excluded pixels enter, at ``+inf``: those are stored capped and come back capped (finite)
from every mode below, since the top-k arrays cannot tell them from finite deaths at the cap; build with
``--full-diagrams`` and compare with the mask's holes if you need them. An Otsu ROI often has several components
(137 of BreastMNIST's 780 images), and a finite death can equal the cap too (a merge or a hole filled by the
brightest ROI pixel). The top-k arrays alone cannot tell those apart, so the default
``essential="components"`` recomputes each ROI component's minimum from the stored image and mask with the
store's own filtration and turns the matching capped row back into ``inf``: the result is the GUDHI diagram,
restricted to the stored top-k. ``essential="global"`` restores only the class born at the global minimum
(the single essential class of the whole image; this reads no pixels), ``"capped"`` returns the stored
values as they are.

Truncation: a sample with ``n_h0 == k0`` (or ``n_h1 == k1``) may have lost low-persistence pairs; the
diagram read back is the top-k of GUDHI's diagram in the store's documented order, not the whole diagram.
A store built with ``--full-diagrams`` also keeps every pair: ``read_diagrams(..., full=True)`` reads those
and is GUDHI's whole diagram (up to float32 rounding).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from topo.store_schema.errors import StoreError
from topo.store_schema.layout import Status, StoreFiles
from topo.store_schema.location import Location
from topo.store_schema.store import Store, open_store

Essential = Literal["components", "global", "capped"]
_ESSENTIAL = ("components", "global", "capped")
_BATCH = 256  # samples read at once: bounds memory when images are read for essential="components"


def _as_store(store: Store | str | os.PathLike[str] | Location) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def diagram_metadata(store: Store | str | os.PathLike[str] | Location) -> dict[str, Any]:
    """What the diagrams' numbers mean: the facts a TDA tool cannot infer from the arrays themselves.

    Args:
        store: a store, or its path or URL.

    Returns:
        A JSON-serialisable dict: filtration direction, complex and input type, coefficient field, minimum
        persistence, k0/k1, stored and returned dtypes, how infinite deaths are stored and given back, the
        ROI backend and parameters, and the store's fingerprint and schema version.
    """
    st = _as_store(store)
    p = st.persistence_spec
    roi = st.attrs.get("roi", {})
    return {
        "schema_version": st.attrs.get("schema_version"),
        "fingerprint": st.fingerprint,
        "homology_dimensions": list(p.get("homology_dimensions", [0, 1])),
        "filtration_direction": p.get("direction"),
        "filtration_values": p.get("values"),
        "complex": p.get("complex"),
        "input_type": p.get("input_type"),
        "construction": p.get("construction"),
        "outside_roi": p.get("outside_roi"),
        "coefficient_field": p.get("coefficient_field"),
        "min_persistence": p.get("min_persistence"),
        "k0": int(p["k0"]),
        "k1": int(p["k1"]),
        "ordering": p.get("ordering"),
        "stored_dtype": "float32",
        "stored_infinite_deaths": p.get("infinite_deaths"),
        "stored_padding": p.get("padding"),
        "returned_dtype": "float64",
        "returned_infinite_deaths": (
            "read_diagrams(essential='components'): inf for the class born at each ROI component's minimum "
            "(as GUDHI's CubicalPersistence reports); 'global': inf only for the class born at the global "
            "minimum; 'capped': as stored"
        ),
        "roi_backend": roi.get("backend"),
        "roi_params": roi.get("params", {}),
        "backend": p.get("backend"),
    }


def _check_indices(st: Store, indices: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if indices is None:
        return st.indices(usable_only=True)
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D sequence of integers, got {indices!r}")
    idx = idx.astype(np.int64)
    out_of_range = idx[(idx < 0) | (idx >= st.num_samples)]
    if out_of_range.size:
        raise IndexError(f"sample indices {out_of_range[:5].tolist()} out of range [0, {st.num_samples})")
    status = st.array("status")[:][idx]
    unusable = idx[~np.isin(status, [int(Status.OK), int(Status.FALLBACK)])]
    if unusable.size:
        raise StoreError(
            f"samples {unusable[:5].tolist()}{' …' if unusable.size > 5 else ''} failed or were never "
            "written and have no diagram; use store.indices() for the usable ones"
        )
    return idx


def _component_minima(image: np.ndarray, mask: np.ndarray, spec: Any) -> tuple[np.float32, np.ndarray]:
    """(cap, per-ROI-component minimum filtration value), both rounded to float32 as the store holds them."""
    from scipy import ndimage

    from topo.store_schema.filtration import filtration  # the one definition of the filtration

    f = filtration(image, mask, spec)
    m = np.asarray(mask).astype(bool)
    cap = np.float32(f[m].max())
    # T-construction: pixels are top cells, so pixels sharing only a corner are connected (8-connectivity).
    labels, n = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
    minima = ndimage.minimum(f, labels=labels, index=np.arange(1, n + 1))
    return cap, np.asarray(minima, dtype=np.float64).astype(np.float32)


def _restore(h0: np.ndarray, births: np.ndarray, cap: np.float32) -> np.ndarray:
    """``h0`` (float32 rows) as float64, one row ``(b, cap)`` per ``b`` in ``births`` given death ``inf``."""
    out = h0.astype(np.float64)
    free = np.ones(len(h0), dtype=bool)
    for b in births:
        hit = np.flatnonzero(free & (h0[:, 0] == b) & (h0[:, 1] == cap))
        if hit.size:  # absent only when top-k truncation dropped that (low-persistence) essential class
            out[hit[0], 1] = np.inf
            free[hit[0]] = False
    return out


def read_diagrams(
    store: Store | str | os.PathLike[str] | Location,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    essential: Essential = "components",
    full: bool = False,
) -> list[list[np.ndarray]]:
    """Per sample ``[H0 (n0, 2), H1 (n1, 2)]`` float64 diagrams, as GUDHI's ``CubicalPersistence`` gives them.

    Args:
        store: a store, or its path or URL.
        indices: sample indices; ``None`` means every usable (ok or fallback) sample, in the order of
            ``store.indices()``.
        essential: which capped rows get back an infinite death: ``"components"`` (default, GUDHI's
            convention: the class born at each ROI component's minimum; reads images and masks),
            ``"global"`` (only the class born at the global minimum) or ``"capped"`` (none).
        full: read every pair (stores built with ``--full-diagrams``) instead of the top-k arrays.

    Returns:
        One ``[H0, H1]`` list per index; only valid rows (never the zero padding), in the store's order
        (persistence descending).

    Raises:
        ValueError: ``essential`` is not one of the three, or ``indices`` is not a list of integers.
        IndexError: an index is out of range.
        StoreError: an index names a failed or unwritten sample, or ``full`` on a store built without
            full diagrams.
    """
    if essential not in _ESSENTIAL:
        raise ValueError(f"essential must be one of {', '.join(_ESSENTIAL)}, got {essential!r}")
    st = _as_store(store)
    if full and not st.persistence_spec.get("full_diagrams"):
        raise StoreError(f"{st.location} was built without --full-diagrams; only top-k diagrams are stored")
    idx = _check_indices(st, indices)
    spec = None
    if essential == "components":
        from topo.store_schema.filtration import FiltrationSpec

        spec = FiltrationSpec.from_json(st.persistence_spec)
    n_h0_all, n_h1_all = st.array("n_h0")[:], st.array("n_h1")[:]
    pd_h0, pd_h1 = st.array("pd_h0"), st.array("pd_h1")
    images, masks = st.array("images"), st.array("roi_masks")
    chunk_size = st.geometry.chunk_size
    full_part: dict[int, list[dict[str, Any]]] = {}

    def full_pairs(i: int) -> tuple[np.ndarray, np.ndarray]:
        c = int(i) // chunk_size
        if c not in full_part:
            full_part.clear()  # one chunk's table at a time: indices usually come in order
            full_part[c] = st.read_table(StoreFiles.full_diagrams_part(c)).to_pylist()
        row = full_part[c][int(i) % chunk_size]
        return tuple(np.asarray(row[d], np.float32).reshape(-1, 2) for d in ("h0", "h1"))  # type: ignore[return-value]

    out: list[list[np.ndarray]] = []
    for lo in range(0, len(idx), _BATCH):
        sel = idx[lo : lo + _BATCH]
        if not full:
            h0s, h1s = pd_h0.oindex[sel], pd_h1.oindex[sel]
        if essential == "components":
            ims, ms = images.oindex[sel], masks.oindex[sel]
        for j, i in enumerate(sel):
            if full:
                h0, h1_32 = full_pairs(i)
                h1 = h1_32.astype(np.float64)
            else:
                h0 = h0s[j, : int(n_h0_all[i])]
                h1 = h1s[j, : int(n_h1_all[i])].astype(np.float64)
            if essential == "capped" or len(h0) == 0:
                out.append([h0.astype(np.float64), h1])
                continue
            if essential == "global":
                # The class born at the global minimum lives until the cap (the largest death stored).
                cap, births = h0[:, 1].max(), np.array([h0[:, 0].min()], dtype=np.float32)
            else:
                cap, births = _component_minima(ims[j], ms[j], spec)
            out.append([_restore(h0, births, cap), h1])
    return out


def to_persim(
    diagrams: Sequence[Sequence[np.ndarray]],
    *,
    infinite: Literal["drop", "clip"] = "drop",
    clip_value: float | None = None,
) -> list[list[np.ndarray]]:
    """Diagrams as persim takes them: per sample ``[H0, H1, ...]`` finite float64 ``(n, 2)`` arrays.

    persim's distances (``bottleneck``, ``wasserstein``, ``sliced_wasserstein``) warn about and silently drop
    points with an infinite death; this makes the choice explicit and keeps every array ``(n, 2)`` (an empty
    dimension is ``(0, 2)``, never ``(0,)``).

    Args:
        diagrams: per sample ``[H0, H1, ...]`` arrays of shape ``(n, 2)``, e.g. from :func:`read_diagrams`.
        infinite: ``"drop"`` the essential classes (persim's own behaviour, now explicit) or ``"clip"`` their
            death to ``clip_value`` (they then count in distances, as bars of length ``clip_value - birth``).
        clip_value: the finite death for ``"clip"`` (the largest filtration value, 1.0 for grey levels, is the
            usual choice); required with ``"clip"``.

    Returns:
        A new list of lists of arrays; the input is not modified.

    Raises:
        ValueError: an unknown ``infinite``, a missing or non-finite ``clip_value``, or an array not ``(n, 2)``.

    Examples:
        >>> d = [[np.array([[0.1, np.inf], [0.2, 0.5]]), np.zeros((0, 2))]]
        >>> to_persim(d)[0][0].tolist(), to_persim(d)[0][1].shape
        ([[0.2, 0.5]], (0, 2))
        >>> to_persim(d, infinite="clip", clip_value=1.0)[0][0].tolist()
        [[0.1, 1.0], [0.2, 0.5]]
    """
    if infinite not in ("drop", "clip"):
        raise ValueError(f"infinite must be 'drop' or 'clip', got {infinite!r}")
    if infinite == "clip" and (clip_value is None or not math.isfinite(clip_value)):
        raise ValueError(f"infinite='clip' needs a finite clip_value, got {clip_value!r}")
    out: list[list[np.ndarray]] = []
    for s, diag in enumerate(diagrams):
        dims = []
        for d, arr in enumerate(diag):
            a = np.array(arr, dtype=np.float64).reshape(-1, 2) if np.size(arr) == 0 else np.array(arr, np.float64)
            if a.ndim != 2 or a.shape[1] != 2:
                raise ValueError(f"sample {s}, dimension {d}: expected an (n, 2) array, got shape {a.shape}")
            inf = np.isinf(a[:, 1])
            if infinite == "drop":
                a = a[~inf]
            else:
                a[inf, 1] = float(clip_value)  # type: ignore[arg-type]
            dims.append(a)
        out.append(dims)
    return out


def to_giotto(
    diagrams: Sequence[Sequence[np.ndarray]],
    *,
    inf_value: float,
    reduced_homology: bool = True,
) -> np.ndarray:
    """giotto-tda's padded ``(n_samples, n_points, 3)`` array of ``[birth, death, dim]`` rows.

    Follows the post-processing of ``gtda.homology.CubicalPersistence`` (``gtda/homology/_utils.py``) as far as
    it applies to ROI diagrams:

    * with ``reduced_homology`` (giotto's default) exactly **one** H0 point with infinite death is dropped per
      sample: the earliest-born one, the class of the global minimum (for a whole image, giotto's only essential
      class). A ROI with several 8-connected components has one essential H0 class per component (see the
      module docstring); the other ``c - 1`` are real features (separate components), so they are **kept**, with
      death ``inf_value``: a sample with ``c`` components contributes ``c - 1`` H0 rows ``[birth, inf_value, 0]``.
      giotto's own ``CubicalPersistence`` never produces these (it has no ROI), so a pipeline that must match
      giotto on whole images should use ``essential="global"`` in :func:`read_diagrams`;
    * every other infinite death (all of them without ``reduced_homology``) becomes ``inf_value``; points whose
      birth is not below their death after that are dropped, as giotto does;
    * dimensions are stacked in order (all H0 rows, then all H1 rows); each dimension is padded to the same
      count in every sample (at least one row) with points *on the diagonal* ``[m, m, dim]``, ``m`` being
      that dimension's smallest birth over the whole batch (0 if it has none). Diagonal points have zero
      persistence, so giotto's features ignore them -- unlike zero rows ``(0, 0)``, which are not on every
      tool's "ignore" list.

    Args:
        diagrams: per sample ``[H0, H1, ...]`` arrays of shape ``(n, 2)``, e.g. from :func:`read_diagrams`.
        inf_value: the finite death that replaces ``inf`` (giotto's ``infinity_values``; the largest
            filtration value, 1.0 for grey levels, is the usual choice).
        reduced_homology: drop one infinite H0 bar per sample, as giotto does by default.

    Returns:
        float64 array ``(n_samples, n_points, 3)``.

    Raises:
        ValueError: ``inf_value`` is not finite, ``diagrams`` is empty, or samples disagree on the number
            of homology dimensions or hold arrays that are not ``(n, 2)``.
    """
    if not isinstance(inf_value, int | float | np.floating | np.integer) or not math.isfinite(inf_value):
        raise ValueError(f"inf_value must be a finite number, got {inf_value!r}")
    if len(diagrams) == 0:
        raise ValueError("no diagrams to convert")
    n_dims = len(diagrams[0])
    per_sample: list[list[np.ndarray]] = []
    for s, diag in enumerate(diagrams):
        if len(diag) != n_dims:
            raise ValueError(f"sample {s} has {len(diag)} homology dimensions, sample 0 has {n_dims}")
        dims = []
        for d, arr in enumerate(diag):
            a = np.asarray(arr, dtype=np.float64)
            if a.size == 0:
                a = a.reshape(0, 2)
            if a.ndim != 2 or a.shape[1] != 2:
                raise ValueError(f"sample {s}, dimension {d}: expected an (n, 2) array, got shape {a.shape}")
            if reduced_homology and d == 0:
                inf_rows = np.flatnonzero(np.isposinf(a[:, 1]))
                if inf_rows.size:
                    a = np.delete(a, inf_rows[np.argmin(a[inf_rows, 0])], axis=0)
            a = a.copy()
            a[np.isposinf(a[:, 1]), 1] = float(inf_value)
            dims.append(a[a[:, 0] < a[:, 1]])
        per_sample.append(dims)
    counts = [max(1, *(len(p[d]) for p in per_sample)) for d in range(n_dims)]
    mins = []
    for d in range(n_dims):
        births = [p[d][:, 0].min() for p in per_sample if len(p[d])]
        mins.append(float(min(births)) if births else 0.0)
    out = np.empty((len(per_sample), sum(counts), 3), dtype=np.float64)
    for s, dims in enumerate(per_sample):
        row = 0
        for d, a in enumerate(dims):
            out[s, row : row + len(a), :2] = a
            out[s, row + len(a) : row + counts[d], :2] = mins[d]
            out[s, row : row + counts[d], 2] = d
            row += counts[d]
    return out
