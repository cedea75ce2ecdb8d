"""Diagrams read from a real store against GUDHI's own CubicalPersistence, through gudhi.representations.

What is compared: the stored image restricted to the stored ROI mask, turned into filtration values by
``pipeline.persistence.filtration`` (grey/255, +inf outside the mask), fed to
``gudhi.sklearn.cubical_persistence.CubicalPersistence``: the diagrams a TDA user would compute.

Documented differences, each asserted below:

* **float32 storage.** The store holds float32; GUDHI computes float64. Diagrams read back equal GUDHI's
  rounded to float32 exactly, so every representation of them is equal to the last bit where it is a
  step function (BettiCurve) and to ~1e-12 where it is a sum (PersistenceImage). Against raw float64
  GUDHI output, continuous representations differ by float32 rounding (PersistenceImage ~1e-3 at a
  0.02 bandwidth, Landscape ~1e-7) and a BettiCurve whose grid contains a grey level k/255 exactly can
  differ by a few counts at that grid point (a birth or death rounds to the other side of it).
* **top-k truncation.** Where ``n == k`` the store holds the k most persistent pairs only; the diagram read
  back equals GUDHI's top-k in the store's order, and its representations differ from the full diagram's
  by the dropped low-persistence pairs' contribution.
"""

from __future__ import annotations

from pathlib import Path

import gudhi
import numpy as np
import pytest
from gudhi.representations import BettiCurve, DiagramSelector, Landscape, PersistenceImage
from gudhi.sklearn.cubical_persistence import CubicalPersistence

from topo.pipeline.persistence import FiltrationSpec, filtration
from topo.store_schema import StoreError, open_store
from topo.store_schema.diagrams import diagram_metadata, read_diagrams, to_giotto

GRID = np.linspace(0.0, 1.0, 101)  # holds grey levels exactly (0.2 = 51/255): the float32 case above


def _representations() -> dict[str, object]:
    return {
        "image": PersistenceImage(bandwidth=0.02, resolution=[16, 16], im_range=[0.0, 1.0, 0.0, 1.0]),
        "landscape": Landscape(num_landscapes=3, resolution=50, sample_range=[0.0, 1.0]),
        "betti": BettiCurve(predefined_grid=GRID),
    }


def _gudhi_diagrams(store_path: Path, idx: np.ndarray) -> list[list[np.ndarray]]:
    st = open_store(store_path)
    spec = FiltrationSpec.from_json(st.persistence_spec)
    ims, masks = st.array("images").oindex[idx], st.array("roi_masks").oindex[idx]
    cp = CubicalPersistence(homology_dimensions=[0, 1], input_type="top_dimensional_cells", n_jobs=1)
    return [list(d) for d in cp.fit_transform([filtration(im, m, spec) for im, m in zip(ims, masks, strict=True)])]


def _f32(d: np.ndarray) -> np.ndarray:
    return np.asarray(d, dtype=np.float64).astype(np.float32).astype(np.float64)


def _same_points(a: np.ndarray, b: np.ndarray) -> bool:
    ka, kb = np.lexsort((a[:, 1], a[:, 0])), np.lexsort((b[:, 1], b[:, 0]))
    return a.shape == b.shape and np.array_equal(a[ka], b[kb])


def _rep(rep: object, dgms: list[np.ndarray]) -> np.ndarray:
    finite = DiagramSelector(use=True, point_type="finite").fit_transform(dgms)
    return rep.fit_transform(finite)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def store_and_gudhi(small_store: Path) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]], np.ndarray]:
    st = open_store(small_store)
    idx = st.indices()
    return read_diagrams(st), _gudhi_diagrams(small_store, idx), idx


def test_read_diagrams_is_gudhis_output(store_and_gudhi) -> None:
    ours, ref, idx = store_and_gudhi
    st_n = len(idx)
    assert len(ours) == len(ref) == st_n == 780
    n_inf = []
    for o, r in zip(ours, ref, strict=True):
        assert len(o) == 2 and all(a.dtype == np.float64 and a.ndim == 2 and a.shape[1] == 2 for a in o)
        for d in (0, 1):
            assert _same_points(o[d], _f32(r[d]))  # same points, inf where GUDHI has inf
        n_inf.append(int(np.isinf(o[0][:, 1]).sum()))
        assert not np.isinf(o[1]).any()
    # Several infinite H0 bars where the Otsu ROI has several components, as GUDHI reports them.
    assert min(n_inf) == 1 and max(n_inf) > 1
    # The bottleneck distance handles the infinite points: 0 means the same diagrams (up to float32).
    for o, r in list(zip(ours, ref, strict=True))[:50]:
        assert gudhi.bottleneck_distance(o[0], r[0]) < 1e-6
        assert gudhi.bottleneck_distance(o[1], r[1]) < 1e-6


@pytest.mark.parametrize("name", ["image", "landscape", "betti"])
@pytest.mark.parametrize("dim", [0, 1])
def test_representations_equal_gudhis(store_and_gudhi, name: str, dim: int) -> None:
    ours, ref, _ = store_and_gudhi
    rep = _representations()[name]
    a = _rep(rep, [o[dim] for o in ours])
    b32 = _rep(rep, [_f32(r[dim]) for r in ref])
    b64 = _rep(rep, [np.asarray(r[dim], dtype=np.float64) for r in ref])
    assert a.shape == b32.shape and a.shape[0] == 780
    if name == "betti":
        np.testing.assert_array_equal(a, b32)
        # Against float64: differences only at grid points that are grey levels, by a few counts.
        diff = np.abs(a - b64)
        assert diff.max() <= 5
        cols = np.flatnonzero(diff.any(axis=0))
        assert all(np.isclose(GRID[c] * 255, round(GRID[c] * 255), atol=1e-9) for c in cols)
    else:
        np.testing.assert_allclose(a, b32, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a, b64, rtol=1e-4, atol=5e-3 if name == "image" else 1e-6)


def test_essential_modes(small_store: Path, store_and_gudhi) -> None:
    ours, _, idx = store_and_gudhi
    glob = read_diagrams(small_store, essential="global")
    capped = read_diagrams(small_store, essential="capped")
    st = open_store(small_store)
    n_h0 = st.array("n_h0")[:][idx]
    for g, c, o, n in zip(glob, capped, ours, n_h0, strict=True):
        assert len(c[0]) == len(g[0]) == len(o[0]) == n
        assert np.isfinite(c[0]).all()
        inf = np.flatnonzero(np.isinf(g[0][:, 1]))
        assert len(inf) == 1 and g[0][inf[0], 0] == c[0][:, 0].min()  # born at the global minimum
        assert c[0][inf[0], 1] == c[0][:, 1].max()  # and stored with the cap as death
        # "global" marks one of the rows "components" marks.
        assert np.isinf(o[0][inf[0], 1])


def test_selection_and_errors(small_store: Path, store_and_gudhi) -> None:
    ours, _, _ = store_and_gudhi
    some = read_diagrams(small_store, [779, 0, 5])
    for s, i in zip(some, [779, 0, 5], strict=True):
        for d in (0, 1):
            np.testing.assert_array_equal(s[d], ours[i][d])
    assert read_diagrams(small_store, []) == []
    with pytest.raises(IndexError, match="780"):
        read_diagrams(small_store, [780])
    with pytest.raises(ValueError, match="essential"):
        read_diagrams(small_store, [0], essential="all")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="without --full-diagrams"):
        read_diagrams(small_store, [0], full=True)


def test_failed_samples_have_no_diagram(ray_session, tmp_path: Path) -> None:
    from PIL import Image

    from topo.pipeline.job import BuildConfig, build_store

    d = tmp_path / "data"
    for c in ("a", "b"):
        (d / c).mkdir(parents=True)
        for i in range(10):  # enough per class for the seeded stratified split of a folder dataset
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 16), np.uint8)).save(d / c / f"{i}.png")
    (d / "a" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "s.zarr"
    build_store(BuildConfig(dataset="folder", data_dir=str(d), out=out, image_size=16, chunk_size=4, progress=False))
    st = open_store(out)
    m = st.manifest().to_pylist()
    bad = next(r["index"] for r in m if r["status"] == "failed")
    assert bad not in st.indices().tolist() and len(read_diagrams(st)) == 20
    with pytest.raises(StoreError, match=rf"samples \[{bad}\] failed"):
        read_diagrams(st, [bad])


def test_truncated_samples_equal_gudhis_top_k(ray_session, tmp_path: Path) -> None:
    """k0 = k1 = 8: most samples lose pairs; what is read is exactly GUDHI's top-8 in the store's order, and
    with the store's full diagrams (``--full-diagrams``) exactly GUDHI's whole diagram."""
    from topo.pipeline.job import BuildConfig, build_store

    out = tmp_path / "k8.zarr"
    build_store(
        BuildConfig(
            dataset="demo",
            out=out,
            limit=48,
            chunk_size=48,
            progress=False,
            filtration=FiltrationSpec(k0=8, k1=8, full_diagrams=True),
        )
    )
    st = open_store(out)
    idx = st.indices()
    ours = read_diagrams(st)
    ref = _gudhi_diagrams(out, idx)
    for o, r in zip(read_diagrams(st, full=True), ref, strict=True):
        for d in (0, 1):
            assert _same_points(o[d], _f32(r[d]))
    truncated = 0
    rep = _representations()["image"]
    spec = FiltrationSpec.from_json(st.persistence_spec)
    ims, masks = st.array("images").oindex[idx], st.array("roi_masks").oindex[idx]
    for o, r, im, mask in zip(ours, ref, ims, masks, strict=True):
        f = filtration(im, mask, spec)
        cap = f[np.isfinite(f)].max()  # the largest value inside the ROI, as the store caps
        for d in (0, 1):
            full = np.asarray(r[d], dtype=np.float64)
            capped = full.copy()
            capped[np.isinf(capped[:, 1]), 1] = cap  # only to order the pairs as the store does
            order = np.lexsort((capped[:, 1], capped[:, 0], -(capped[:, 1] - capped[:, 0])))[:8]
            assert _same_points(o[d], _f32(full[order]))
            if len(full) > 8:
                truncated += 1
                a = _rep(rep, [o[d]])
                b = _rep(rep, [_f32(full)])
                assert not np.allclose(a, b, atol=1e-9)  # the dropped pairs are missing, as documented
    assert truncated > 40


def _reduced(h0: np.ndarray, inf_value: float) -> np.ndarray:
    """giotto's H0: the earliest-born infinite bar dropped, other infinite deaths set to inf_value."""
    out = np.delete(h0, np.argmin(np.where(np.isinf(h0[:, 1]), h0[:, 0], np.inf)), axis=0)
    out[np.isinf(out[:, 1]), 1] = inf_value
    return out


def test_to_giotto(store_and_gudhi) -> None:
    ours, _, _ = store_and_gudhi
    dg = ours[:20]
    g = to_giotto(dg, inf_value=1.0)
    h0s = [_reduced(o[0], 1.0) for o in dg]
    n0, n1 = [len(h) for h in h0s], [len(o[1]) for o in dg]
    assert g.shape == (20, max(n0) + max(n1), 3) and g.dtype == np.float64
    assert np.isfinite(g).all()
    assert (g[:, : max(n0), 2] == 0).all() and (g[:, max(n0) :, 2] == 1).all()
    for o, h0, row, k0, k1 in zip(dg, h0s, g, n0, n1, strict=True):
        assert _same_points(row[:k0, :2], h0)
        assert _same_points(row[max(n0) : max(n0) + k1, :2], o[1])
    # Padding: points on the diagonal at that dimension's smallest birth over the batch, never zeros.
    for dim, (lo, hi, counts, births) in enumerate(
        [
            (0, max(n0), n0, np.concatenate([h[:, 0] for h in h0s])),
            (max(n0), max(n0) + max(n1), n1, np.concatenate([o[1][:, 0] for o in dg])),
        ]
    ):
        s = int(np.argmin(counts))
        pad = g[s, lo + counts[s] : hi]
        assert len(pad) > 0, dim
        assert (pad[:, 0] == pad[:, 1]).all() and (pad[:, 0] == births.min()).all() and (pad[:, 2] == dim).all()
    kept = to_giotto(dg, inf_value=2.5, reduced_homology=False)
    assert kept.shape[1] == max(len(o[0]) for o in dg) + max(n1)
    assert (kept[..., 1] == 2.5).sum() == sum(int(np.isinf(o[0][:, 1]).sum()) for o in dg)
    for bad in (np.inf, np.nan):
        with pytest.raises(ValueError, match="inf_value"):
            to_giotto(dg, inf_value=bad)
    with pytest.raises(ValueError, match="no diagrams"):
        to_giotto([], inf_value=1.0)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        to_giotto([[np.zeros((3, 3)), np.zeros((0, 2))]], inf_value=1.0)
    # An empty dimension still gets one diagonal row (at 0: no births at all), as in giotto.
    e = to_giotto([[np.array([[0.1, np.inf], [0.2, 0.5]]), np.zeros((0, 2))]], inf_value=1.0)
    assert e.tolist() == [[[0.2, 0.5, 0.0], [0.0, 0.0, 1.0]]]


def test_diagram_metadata(small_store: Path) -> None:
    md = diagram_metadata(small_store)
    assert md["filtration_direction"] == "sublevel"
    assert md["input_type"] == "top_dimensional_cells"
    assert md["k0"] == 48 and md["k1"] == 96
    assert md["stored_dtype"] == "float32" and md["returned_dtype"] == "float64"
    assert md["min_persistence"] == 0.0
    assert md["roi_backend"] == "otsu"
    assert "coefficient_field" in md and md["homology_dimensions"] == [0, 1]
    assert md["fingerprint"] == open_store(small_store).fingerprint
