"""A dataset source is one class plus one registration: this file adds a toy source and builds a store with it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from topo.pipeline.sources import (
    SOURCES,
    Payload,
    SampleRecord,
    Source,
    SourceEntry,
    SourceError,
    SourceInfo,
    get_source,
    register_source,
    source_names,
)
from topo.pipeline.sources.registry import sources_help
from topo.store_schema import open_store


class StripesSource(Source):
    """Twelve 16² grey images: class 0 horizontal stripes, class 1 vertical (made here, no files)."""

    def __init__(self, period: int) -> None:
        self.period = period

    def info(self) -> SourceInfo:
        return SourceInfo("stripes", ("horizontal", "vertical"), "CC0 (generated)", channels=1, image_size=16)

    def records(self) -> list[SampleRecord]:
        splits = ["train"] * 8 + ["val"] * 2 + ["test"] * 2
        return [SampleRecord(f"s{i:02d}", f"gen:{i}", i % 2, splits[i]) for i in range(12)]

    def payloads(self, records: Sequence[SampleRecord]) -> Iterator[Payload]:
        for r in records:
            stripes = ((np.arange(16) // self.period) % 2 * 200 + 20).astype(np.uint8)
            img = np.tile(stripes[:, None], (1, 16)) if r.label == 0 else np.tile(stripes[None, :], (16, 1))
            yield img

    def content_options(self) -> dict:
        return {"period": self.period}


@pytest.fixture
def toy_source(monkeypatch):
    entry = SourceEntry("stripes", lambda name, **_: StripesSource(period=4), "toy stripes", needs_data_dir=False)
    monkeypatch.delitem(SOURCES, "stripes", raising=False)
    register_source(entry)
    yield entry
    SOURCES.pop("stripes", None)


def test_registered_source_is_offered_everywhere(toy_source):
    assert "stripes" in source_names()
    assert "stripes: toy stripes" in sources_help()
    assert isinstance(get_source("STRIPES"), StripesSource)


def test_a_name_cannot_be_taken_twice(toy_source):
    with pytest.raises(ValueError, match="already registered"):
        register_source(SourceEntry("stripes", lambda name, **_: StripesSource(2), "again"))


def test_registry_checks_data_dir_and_download():
    with pytest.raises(SourceError, match="needs --data-dir"):
        get_source("isic2019")
    with pytest.raises(SourceError, match="--download is only available"):
        get_source("folder", data_dir=".", download=True)
    with pytest.raises(SourceError, match="unknown dataset 'nope'; valid: demo"):
        get_source("nope")


def test_build_a_store_from_a_toy_source(toy_source, ray_session, tmp_path):
    from topo.pipeline.job import BuildConfig, build_store

    out = tmp_path / "stripes.zarr"
    summary = build_store(BuildConfig(dataset="stripes", out=out, roi="none", chunk_size=4, progress=False))
    assert summary.complete
    st = open_store(out)
    assert st.problems() == []
    assert st.class_names == ["horizontal", "vertical"]
    assert st.num_samples == 12
    labels = st.array("labels")[:]
    assert labels.tolist() == [i % 2 for i in range(12)]
    img = st.array("images")[1]
    assert img.shape[:2] == (16, 16) and img[0, :, 0].std() > 0  # vertical stripes vary along a row
