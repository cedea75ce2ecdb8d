"""Optional full diagrams: every pair, beside the top-k arrays, consistent with them."""

from __future__ import annotations

import numpy as np
import pytest

from topo.pipeline.job import BuildConfig, build_store
from topo.pipeline.persistence import FiltrationSpec, diagrams, filtration
from topo.store_schema import StoreError, open_store


def test_full_diagrams_hold_every_pair_and_extend_the_top_k(ray_session, tmp_path, small_store):
    out = tmp_path / "full.zarr"
    build_store(
        BuildConfig(
            dataset="demo",
            out=out,
            limit=40,
            chunk_size=16,
            progress=False,
            filtration=FiltrationSpec(full_diagrams=True),
        )
    )
    st = open_store(out)
    assert st.persistence_spec["full_diagrams"] is True
    spec = FiltrationSpec.from_json(st.persistence_spec)
    for i in (0, 17, 39):
        h0, h1 = st.full_diagrams(i)
        image, mask = st.array("images")[i], st.array("roi_masks")[i]
        ref0, ref1 = diagrams([filtration(image, mask, spec)])[0]
        assert len(h0) == len(ref0) and len(h1) == len(ref1)
        n0, n1 = int(st.array("n_h0")[i]), int(st.array("n_h1")[i])
        np.testing.assert_array_equal(h0[:n0], st.array("pd_h0")[i][:n0])
        np.testing.assert_array_equal(h1[:n1], st.array("pd_h1")[i][:n1])
    with pytest.raises(StoreError, match="without --full-diagrams"):
        open_store(small_store).full_diagrams(0)
