"""Identity: canonical JSON, content digests and the (name, params) pair every cell is made of.

Every hash the harness keys a cache entry, a cell or a stored parameter set by comes from here, so two
layers can never disagree on what "the same" means.
"""

from __future__ import annotations

import hashlib
import json
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
