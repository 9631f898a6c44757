"""Identity: canonical JSON, content digests, dataset fingerprints and the (name, params) pair every cell
is made of.

Every hash the harness keys a cache entry, a cell or a stored parameter set by comes from here, so two
layers can never disagree on what "the same" means.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def canonical(obj: Any, *, compact: bool = True) -> str:
    """Canonical JSON: sorted keys, anything else as ``str``; the basis of every hash and stored parameter set.

    ``compact`` (the default, for hashes) writes no spaces. The store writes ``compact=False``
    (``", "`` and ``": "``, :func:`json.dumps`'s own separators): databases hold that text and queries
    match it as text (a cell's parameters against another run's, a baseline's against the cell asking),
    so changing it would split equal parameters of old and new rows.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":") if compact else None, default=str)


def digest(obj: Any, n: int = 16) -> str:
    """Short sha256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Component:
    """A named plugin thing with one grid point of its parameters."""

    name: str
    params: dict

    def as_dict(self) -> dict:
        """``{"name": ..., "params": {...}}``."""
        return {"name": self.name, "params": self.params}


def file_sha256(path: str | Path) -> str:
    """Content hash of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: The splits a dataset fingerprint covers, in the order they are hashed.
SPLIT_NAMES = ("train", "calibration", "test")


def fingerprint_arrays(*arrays: Any) -> str:
    """A dataset's fingerprint: the sha256 hex digest of ``arrays``, in order.

    Each array's dtype and shape are hashed with its bytes, so two datasets with the same raw bytes
    but another layout differ. ``None`` (an unlabelled split's ``y``) is hashed as absent; a feed of
    named arrays (:mod:`harness.core.inputs`) name by name, in sorted order, names included.
    """
    import numpy as np

    h = hashlib.sha256()

    def add(a: Any) -> None:
        if a is None:
            h.update(b"none;")
        elif isinstance(a, Mapping):
            h.update(f"feed{len(a)};".encode())
            for name in sorted(a):
                h.update(f"{name}=".encode())
                add(a[name])
        else:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape};".encode())
            h.update(a.tobytes())

    for a in arrays:
        add(a)
    return h.hexdigest()


def fingerprint_splits(splits: Any) -> str:
    """The fingerprint of a dataset's three splits: :func:`fingerprint_arrays` of each split's ``x``
    and ``y`` in :data:`SPLIT_NAMES` order. ``splits`` is a ``Splits`` or a mapping of split name
    to ``Split``; the value to put in ``Splits.fingerprint``."""
    parts = [splits[n] if isinstance(splits, Mapping) else getattr(splits, n) for n in SPLIT_NAMES]
    return fingerprint_arrays(*(a for s in parts for a in (s.x, s.y)))
