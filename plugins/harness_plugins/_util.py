"""Small helpers shared by the plugin modules (no heavy imports at module level)."""

from __future__ import annotations

import hashlib
from typing import Any


def fingerprint_arrays(*arrays: Any) -> str:
    """A sha256 hex digest of the given numpy arrays (``None`` allowed), in order.

    The dtype and shape of each array are hashed along with its bytes, so that two
    datasets with the same raw bytes but a different layout get different fingerprints.
    """
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()
