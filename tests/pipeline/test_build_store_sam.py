"""``build-store --roi sam`` end to end on CPU, with a tiny randomly initialised SAM built by segment-anything's own
builder (``vit_tiny_test``): SAM actors on Ray, masks recorded, diagrams equal to GUDHI's on the stored ROI.

Box prompts here, the automatic mask generator in test_build_store_sam_auto.py: separate files so each stays under a
minute on two shared cores (the generator costs seconds per image on a CPU even with this model).
"""

from __future__ import annotations

import numpy as np
import pytest
from sam_build_helpers import build_with_sam, check_diagrams

from topo.pipeline.job import BuildConfig, build_store
from topo.pipeline.roi.sam import SamRoi, file_digests
from topo.store_schema import Status, open_store
from topo.store_schema.verify import verify_store


@pytest.mark.slow  # ~47 s on two busy cores
def test_sam_box_build(ray_session, medmnist_dir, tmp_path, tiny_sam_checkpoint):
    out = tmp_path / "box.zarr"
    s = build_with_sam(medmnist_dir, out, tiny_sam_checkpoint, limit=16, chunk_size=8, mode="box")
    assert s.complete and s.chunks_computed == 2 and s.counts.get("failed", 0) == 0
    st = open_store(out)
    st.validate()
    assert verify_store(out).ok
    roi = st.attrs["roi"]
    assert roi["backend"] == "sam" and roi["params"]["model"] == "vit_tiny_test" and roi["params"]["mode"] == "box"
    digests = file_digests(tiny_sam_checkpoint)
    assert roi["checkpoint"] == {"file": tiny_sam_checkpoint.name, "official": False, **digests}
    # The masks are SAM's own (the random model still segments something), equal to a local run of the backend.
    local = SamRoi(model="vit_tiny_test", checkpoint=tiny_sam_checkpoint, mode="box", device="cpu")
    expected = local.checked(list(st.array("images")[:]))
    stored = st.array("roi_masks")[:]
    agree = np.mean([np.mean(r.mask == m) for r, m in zip(expected, stored, strict=True)])
    assert agree > 0.999, f"stored SAM masks differ from a local run ({agree:.4f} of pixels agree)"
    status = st.array("status")[:]
    assert (status == Status.OK).sum() >= 8 and 0.05 < stored[status == Status.OK].mean() < 0.95
    check_diagrams(out)
    # Same data with the otsu backend: another fingerprint.
    otsu = build_store(
        BuildConfig(
            dataset="breastmnist",
            data_dir=str(medmnist_dir),
            out=tmp_path / "o.zarr",
            limit=16,
            chunk_size=8,
            progress=False,
        )
    )
    assert otsu.fingerprint != s.fingerprint
