"""The on-disk contract of a topo store: layout, dtypes, chunking, attrs, manifest, versions, fingerprint.

Everything that reads or writes a store asks this package; nothing else spells an array name, a dtype or a
file name. See :mod:`topo.store_schema.layout` for the declaration itself.
"""

from topo.store_schema.creation import create_store, remove_store
from topo.store_schema.errors import StoreError, StoreIncompleteError, StoreVersionError
from topo.store_schema.layout import (
    ARRAYS,
    CHUNK_ARRAYS,
    DEFAULT_IMAGE_CODEC,
    IMAGE_CODECS,
    SCHEMA_VERSION,
    ArraySpec,
    Geometry,
    Status,
    StoreFiles,
)
from topo.store_schema.manifest import MANIFEST_SCHEMA
from topo.store_schema.store import Store, open_store

__all__ = [
    "ARRAYS",
    "CHUNK_ARRAYS",
    "DEFAULT_IMAGE_CODEC",
    "IMAGE_CODECS",
    "MANIFEST_SCHEMA",
    "SCHEMA_VERSION",
    "ArraySpec",
    "Geometry",
    "Status",
    "Store",
    "StoreError",
    "StoreFiles",
    "StoreIncompleteError",
    "StoreVersionError",
    "create_store",
    "open_store",
    "remove_store",
]
