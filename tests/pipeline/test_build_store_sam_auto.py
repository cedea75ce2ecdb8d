"""``build-store --roi sam --sam-mode auto`` end to end on CPU with the tiny random-weight SAM (``vit_tiny_test``):
the automatic mask generator (4×4 point grid) on Ray actors, masks recorded, diagrams equal to GUDHI's."""

from __future__ import annotations

import pytest
from sam_build_helpers import build_with_sam, check_diagrams

from topo.store_schema import Status, open_store


@pytest.mark.slow  # ~6 s on two busy cores
def test_sam_auto_build(ray_session, medmnist_dir, tmp_path, tiny_sam_checkpoint):
    out = tmp_path / "auto.zarr"
    # Quality filters off, so the random model's masks are used rather than all falling back to the whole image.
    s = build_with_sam(
        medmnist_dir,
        out,
        tiny_sam_checkpoint,
        limit=3,
        chunk_size=2,
        mode="auto",
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    assert s.complete and s.chunks_computed == 2 and s.counts.get("failed", 0) == 0
    st = open_store(out)
    st.validate()
    p = st.attrs["roi"]["params"]
    assert (p["mode"], p["points_per_side"], p["pred_iou_thresh"]) == ("auto", 4, 0.0)
    masks = st.array("roi_masks")[:]
    ok = st.array("status")[:] == Status.OK
    assert ok.any() and all(0 < m.mean() < 1 for m in masks[ok])
    check_diagrams(out)
