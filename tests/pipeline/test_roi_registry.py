"""An ROI backend is one class plus one registration: this file adds toy backends and builds stores with them."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pytest
from ray import cloudpickle

from topo.cli.roi_options import parse_roi_params
from topo.pipeline.roi import RoiBackend, RoiEntry, make_roi, register_roi, roi_help, roi_names, unregister_roi
from topo.store_schema import open_store


class CentreSquare(RoiBackend):
    """The central square of side ``fraction`` of the image (made here, no model)."""

    name = "centre-square"

    def __init__(self, *, fraction: float = 0.5, min_area: float = 0.01) -> None:
        super().__init__(min_area=min_area)
        self.fraction = fraction

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for im in images:
            h, w = im.shape[:2]
            dh, dw = round(h * (1 - self.fraction) / 2), round(w * (1 - self.fraction) / 2)
            m = np.zeros((h, w), bool)
            m[dh : h - dh, dw : w - dw] = True
            out.append(m)
        return out

    def params(self) -> dict:
        return {**super().params(), "fraction": self.fraction}


@pytest.fixture
def toy_backends():
    # The driver ships the registry entry to Ray workers; a class defined in a test module goes by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cpu = register_roi(RoiEntry("centre-square", CentreSquare, "toy square, CPU"))
    actor = register_roi(RoiEntry("centre-square-actor", CentreSquare, "toy square on an actor", {"GPU": 1}))
    yield cpu, actor
    unregister_roi(cpu.name)
    unregister_roi(actor.name)
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_registered_backend_is_offered_and_built_by_name(toy_backends):
    assert {"centre-square", "centre-square-actor"} <= set(roi_names())
    assert "centre-square (toy square, CPU)" in roi_help()
    assert isinstance(make_roi("centre-square", fraction=0.25), CentreSquare)
    assert not toy_backends[0].on_actors and toy_backends[1].on_actors


def test_a_name_cannot_be_taken_twice(toy_backends):
    with pytest.raises(ValueError, match="already registered"):
        register_roi(RoiEntry("centre-square", CentreSquare, "again", {"GPU": 1}))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["centre-square", "centre-square-actor"])
def test_build_a_store_with_a_toy_backend(backend, toy_backends, ray_session, tmp_path):
    from topo.pipeline.job import BuildConfig, build_store

    out = tmp_path / f"{backend}.zarr"
    cfg = BuildConfig(dataset="demo", out=out, roi=backend, roi_params={"fraction": 0.5}, limit=24, chunk_size=8)
    summary = build_store(cfg)
    assert summary.complete
    st = open_store(out)
    assert st.problems() == []
    assert st.attrs["roi"]["backend"] == backend
    assert st.attrs["roi"]["params"] == {"min_area": 0.01, "fraction": 0.5}
    masks = st.array("roi_masks")[:]
    expected = CentreSquare(fraction=0.5).masks([np.zeros(masks.shape[1:])])[0]
    assert (masks == expected).all()


def test_roi_params_from_the_command_line():
    assert parse_roi_params(["min_area=0.02", "mode=box", "flag=true"]) == {
        "min_area": 0.02,
        "mode": "box",
        "flag": True,
    }
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_roi_params(["min_area"])
