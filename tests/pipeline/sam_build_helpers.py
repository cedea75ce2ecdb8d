"""Shared by the two SAM build test files: a build with the tiny random-weight SAM (the session fixture
``tiny_sam_checkpoint``) and the diagram check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ph_reference import reference_topk

from topo.pipeline.job import BuildConfig, build_store
from topo.store_schema import open_store


def build_with_sam(data_dir: Path, out: Path, ckpt: Path, *, limit: int, chunk_size: int, **sam):
    """``build-store --dataset breastmnist --roi sam`` on ``data_dir/breastmnist.npz``."""
    params = {"model": "vit_tiny_test", "checkpoint": str(ckpt), **sam}
    cfg = BuildConfig(
        dataset="breastmnist",
        data_dir=str(data_dir),
        out=out,
        roi="sam",
        roi_params=params,
        limit=limit,
        chunk_size=chunk_size,
        progress=False,
    )
    return build_store(cfg)


def check_diagrams(path) -> None:
    st = open_store(path)
    ims, masks = st.array("images")[:], st.array("roi_masks")[:]
    pd0, pd1, n0, n1 = (st.array(a)[:] for a in ("pd_h0", "pd_h1", "n_h0", "n_h1"))
    for i in range(st.num_samples):
        h0, c0, h1, c1 = reference_topk(ims[i], masks[i])
        assert (n0[i], n1[i]) == (c0, c1), f"sample {i}"
        np.testing.assert_array_equal(pd0[i], h0, err_msg=f"sample {i} H0")
        np.testing.assert_array_equal(pd1[i], h1, err_msg=f"sample {i} H1")
