"""Errors raised when a store does not match its contract."""


class StoreError(Exception):
    """A store is missing, malformed, or does not match what the caller needs."""


class StoreVersionError(StoreError):
    """The store was written with a schema major version this reader does not understand."""


class StoreIncompleteError(StoreError):
    """The store's build has not finished: resumable, not corrupt."""


class ChunkChecksumError(StoreError):
    """A chunk read from the store differs from the checksum recorded when it was written (or has none)."""
