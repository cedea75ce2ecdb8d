"""The Parquet manifest: one row per sample, in sample-index order."""

from __future__ import annotations

import pyarrow as pa

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("index", pa.int64(), nullable=False),
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("source_ref", pa.string(), nullable=False),
        pa.field("input_sha256", pa.string()),  # of the decoded, pre-resize pixel array; null if undecodable
        pa.field("label", pa.int32(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("roi_area", pa.float32()),  # fraction of the image inside the ROI
        pa.field("n_h0", pa.int16()),
        pa.field("n_h1", pa.int16()),
        pa.field("status", pa.string(), nullable=False),  # ok | fallback | failed
        pa.field("reason", pa.string()),  # why a sample fell back or failed
        # ok | suspect:<reasons> (schema 1.1.0); null when failed or when the ROI fell back before being judged
        pa.field("roi_quality", pa.string()),
    ]
)

MANIFEST_COLUMNS_SINCE = {"roi_quality": "1.1.0"}
"""Columns a minor version added: a store of an older minor lacks them and reads them as null."""

CHECKSUM_SCHEMA = pa.schema(
    [
        pa.field("array", pa.string(), nullable=False),
        pa.field("chunk", pa.int32(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),
        pa.field("stop", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),  # of the decoded chunk's bytes (C order)
    ]
)


FULL_DIAGRAM_SCHEMA = pa.schema(
    [
        pa.field("index", pa.int64(), nullable=False),
        # Flattened (birth, death) pairs in the documented order, complete: values + offsets, with Parquet's list
        # offsets doing the bookkeeping.
        pa.field("h0", pa.list_(pa.float32())),
        pa.field("h1", pa.list_(pa.float32())),
    ]
)


def empty_manifest() -> pa.Table:
    return MANIFEST_SCHEMA.empty_table()
