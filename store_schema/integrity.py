"""Per-chunk checksums: recorded when a chunk is written, re-computed by ``topo store verify``.

A checksum covers the decoded content of one chunk of one array (dtype, shape and bytes in C order), so it does
not depend on the codec and reads the same from a directory, a packed file or a remote URL.
"""

from __future__ import annotations

import hashlib

import numpy as np


def block_digest(block: np.ndarray) -> str:
    a = np.ascontiguousarray(block)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()
