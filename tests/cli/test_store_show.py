"""`topo store show`: a contact sheet PNG with ROI contours, labels, quality flags and diagram thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from topo.cli.store_show import select, show_cmd, spread
from topo.store_schema import open_store


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    store_app = typer.Typer()
    app.add_typer(store_app, name="store")
    store_app.command("show")(show_cmd)
    return app


@pytest.fixture(scope="module")
def isic_store(ray_session, isic_dir, tmp_path_factory):
    from topo.pipeline.job import BuildConfig, build_store

    out = tmp_path_factory.mktemp("show") / "isic.zarr"
    cfg = BuildConfig(dataset="isic2019", out=out, data_dir=str(isic_dir), image_size=64, progress=False)
    cfg.roi_suspect = "keep"  # suspect masks stay, so the sheet has contours to draw for them too
    assert build_store(cfg).complete
    return out


@pytest.mark.slow  # a small build and two renders: ~15 s on two busy cores
def test_show_writes_a_sheet_with_contours(cli, isic_store, tmp_path):
    png = tmp_path / "sheet.png"
    r = CliRunner().invoke(cli, ["store", "show", "--store", str(isic_store), "--n", "6", "--out", str(png)])
    assert r.exit_code == 0, r.output
    assert "6 samples" in r.output
    im = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert im.shape[0] > 100 and im.shape[1] > 300
    # The ROI contours are drawn in lime: pure green pixels that a dermoscopy-like image does not have.
    lime = (im[..., 1] > 200) & (im[..., 0] < 80) & (im[..., 2] < 80)
    assert lime.sum() > 50
    bad = CliRunner().invoke(cli, ["store", "show", "--store", str(isic_store), "--class", "XYZ", "--out", str(png)])
    assert bad.exit_code == 2 and "unknown class 'XYZ'" in bad.output and "Traceback" not in bad.output


def test_filters_select_by_split_class_and_quality():
    import pandas as pd

    m = pd.DataFrame(
        {
            "index": [0, 1, 2, 3],
            "label": [0, 1, 0, 1],
            "split": ["train", "train", "val", "train"],
            "status": ["ok", "fallback", "ok", "failed"],
            "roi_quality": ["ok", "suspect:area 0.9 >= 0.85", "ok", None],
        }
    )
    names = ["MEL", "NV"]
    assert list(select(m, names, split="train", cls=None, quality=None)["index"]) == [0, 1]  # failed left out
    assert list(select(m, names, split=None, cls="NV", quality=None)["index"]) == [1]
    assert list(select(m, names, split=None, cls="0", quality=None)["index"]) == [0, 2]
    assert list(select(m, names, split=None, cls=None, quality="suspect")["index"]) == [1]
    assert list(select(m, names, split=None, cls=None, quality="fallback")["index"]) == [1]
    assert list(spread(100, 3)) == [0, 50, 99] and list(spread(2, 5)) == [0, 1]


@pytest.mark.slow  # builds the module's store when run alone
def test_every_sample_of_the_store_has_a_quality(isic_store):
    assert open_store(isic_store).manifest().column("roi_quality").null_count == 0
