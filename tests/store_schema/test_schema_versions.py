"""A minor schema version may add arrays: stores of the older minor still open and validate."""

from __future__ import annotations

import dataclasses

import pytest

from topo.store_schema import ARRAYS, StoreError, open_store
from topo.store_schema.layout import arrays_for, version_tuple


def _extra(since: str):
    base = ARRAYS["n_h0"]
    return dataclasses.replace(base, name="extra_counts", since=since, doc="an array of a later minor version")


def test_version_tuple_orders_numerically():
    assert version_tuple("1.10.0") > version_tuple("1.9.3")
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        version_tuple("one")


def test_arrays_for_keeps_only_arrays_introduced_by_then(monkeypatch):
    monkeypatch.setitem(ARRAYS, "extra_counts", _extra("1.4.0"))
    assert "extra_counts" not in arrays_for("1.3.9")
    assert "extra_counts" in arrays_for("1.4.0")
    assert set(arrays_for("1.0.0")) >= {"images", "roi_masks", "pd_h0", "pd_h1"}


def test_an_older_store_opens_without_the_newer_array(small_store, monkeypatch):
    monkeypatch.setitem(ARRAYS, "extra_counts", _extra("1.99.0"))
    st = open_store(small_store)
    assert st.problems() == []  # the later array is not expected of this store
    with pytest.raises(StoreError, match="predates array 'extra_counts'"):
        st.array("extra_counts")


def test_an_array_of_the_store_version_is_required(small_store, monkeypatch):
    st = open_store(small_store)
    monkeypatch.setitem(ARRAYS, "extra_counts", _extra(st.schema_version))
    assert any("extra_counts" in p and "missing" in p for p in st.problems())
