"""``build-store --no-jpeg-draft`` turns the JPEG draft decode off: the stored pixels are then those of a full
decode, the draft build's stay within ``DRAFT_TOLERANCE`` of them, and the two settings never mix in one store."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.datasets import dermoscopy_like
from PIL import Image
from typer.testing import CliRunner

import topo.cli.app as app_mod
from topo.pipeline.decode import DRAFT_METHOD, DRAFT_TOLERANCE
from topo.store_schema import open_store


@pytest.fixture(scope="module")
def large_jpegs(tmp_path_factory) -> Path:
    """Two classes of three 1200×900 dermoscopy-like JPEGs: large enough for a ½ DCT reduction at 128²."""
    root = tmp_path_factory.mktemp("large_jpegs")
    for c, name in enumerate(("nevus", "melanoma")):
        (root / name).mkdir()
        for i, small in enumerate(dermoscopy_like(3, (96, 128), seed=10 * c + 1)):
            big = cv2.resize(small, (1200, 900), interpolation=cv2.INTER_CUBIC)
            Image.fromarray(big).save(root / name / f"img{i}.jpg", quality=90)
    return root


def _build(data: Path, out: Path, *extra: str):
    args = ["build-store", "--dataset", "folder", "--data-dir", str(data), "--out", str(out), "--image-size", "128"]
    return CliRunner().invoke(app_mod.app, [*args, "--no-progress", *extra])


@pytest.mark.slow  # two builds on the shared Ray, ~20 s
def test_draft_switch_changes_only_the_decode(ray_session, large_jpegs, tmp_path) -> None:
    draft, full = tmp_path / "draft.zarr", tmp_path / "full.zarr"
    for out, flag in ((draft, "--jpeg-draft"), (full, "--no-jpeg-draft")):
        r = _build(large_jpegs, out, flag)
        assert r.exit_code == 0, r.output
        assert "images / s" in r.output and "Ray start-up" in r.output  # the rate leaves Ray's start-up out
    a = np.asarray(open_store(draft).array("images")[:]).astype(int)
    b = np.asarray(open_store(full).array("images")[:]).astype(int)
    assert a.shape == b.shape and (a != b).any()  # the switch reaches the workers' decode
    assert np.abs(a - b).mean(axis=tuple(range(1, a.ndim))).max() <= DRAFT_TOLERANCE
    recorded = {p.name: json.loads((p / "_build" / "config.json").read_text())["jpeg_draft"] for p in (draft, full)}
    assert recorded == {"draft.zarr": DRAFT_METHOD, "full.zarr": False}  # which draft decode, not just "on"
    # Building into the draft store without draft is another configuration: refused, nothing mixed.
    r = _build(large_jpegs, draft, "--no-jpeg-draft")
    assert r.exit_code == 2 and "differs in: jpeg_draft" in r.output, r.output
    # A store whose draft pixels came from another draft decoder (recorded as plain `true` before the method was
    # named) is another configuration too.
    config = draft / "_build" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "jpeg_draft": True}))
    r = _build(large_jpegs, draft, "--jpeg-draft")
    assert r.exit_code == 2 and "differs in: jpeg_draft" in r.output, r.output
