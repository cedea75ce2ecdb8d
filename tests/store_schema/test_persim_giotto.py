"""Store diagrams in persim's and giotto-tda's formats, including ROIs with several components."""

from __future__ import annotations

import warnings

import gudhi
import numpy as np
import pytest

from topo.store_schema.diagrams import read_diagrams, to_giotto, to_persim

persim = pytest.importorskip("persim")


@pytest.fixture(scope="module")
def diagrams(small_store):
    return read_diagrams(small_store)


def test_to_persim_output_goes_into_persim_bottleneck(diagrams):
    some = diagrams[:12]
    assert any(np.isinf(d[0][:, 1]).any() for d in some)  # the input really has essential classes
    finite = to_persim(some)
    for d in finite:
        for a in d:
            assert a.ndim == 2 and a.shape[1] == 2 and np.isfinite(a).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # persim warns when it has to drop infinite points itself
        for i in range(len(finite) - 1):
            for dim in (0, 1):
                a, b = finite[i][dim], finite[i + 1][dim]
                got = persim.bottleneck(a, b)
                assert got == pytest.approx(gudhi.bottleneck_distance(a, b), abs=1e-9)
                assert persim.bottleneck(a, a) == 0.0
    clipped = to_persim(some, infinite="clip", clip_value=1.0)
    for raw, c in zip(some, clipped, strict=True):
        assert len(c[0]) == len(raw[0]) and np.isfinite(c[0]).all()
        assert (c[0][np.isinf(raw[0][:, 1]), 1] == 1.0).all()
    assert np.isinf(some[0][0][:, 1]).any()  # the input is left as it was


def test_to_persim_keeps_empty_dimensions_two_dimensional_and_checks_arguments():
    d = to_persim([[np.array([[0.1, np.inf]]), np.zeros(0)]])
    assert d[0][0].shape == (0, 2) and d[0][1].shape == (0, 2)
    assert persim.bottleneck(d[0][0], np.array([[0.2, 0.4]])) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="clip_value"):
        to_persim([[np.zeros((1, 2))]], infinite="clip")
    with pytest.raises(ValueError, match="infinite"):
        to_persim([[np.zeros((1, 2))]], infinite="zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        to_persim([[np.zeros((2, 3))]])


def test_to_giotto_keeps_all_but_one_essential_class_of_a_multi_component_roi(diagrams):
    multi = [d for d in diagrams if np.isinf(d[0][:, 1]).sum() >= 2][:5]
    assert len(multi) >= 2, "the demo store has ROIs with several components"
    g = to_giotto(multi, inf_value=1.0)
    for raw, rows in zip(multi, g, strict=True):
        inf = np.isinf(raw[0][:, 1])
        h0 = rows[rows[:, 2] == 0]
        h0 = h0[h0[:, 0] < h0[:, 1]]  # without the diagonal padding
        # c components -> c - 1 rows at inf_value; the dropped one is the earliest born (the global minimum's).
        births = np.sort(raw[0][inf][:, 0])
        assert np.array_equal(np.sort(h0[np.isin(h0[:, 0], births) & (h0[:, 1] == 1.0)][:, 0]), births[1:])
        assert len(h0) == len(raw[0]) - 1
    kept = to_giotto(multi, inf_value=1.0, reduced_homology=False)
    for r, m in zip(kept, multi, strict=True):
        assert (r[r[:, 2] == 0][:, 1] == 1.0).sum() >= np.isinf(m[0][:, 1]).sum()
