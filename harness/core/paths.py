"""Where the harness keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "HARNESS_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder: ``$HARNESS_CACHE_DIR``, else ``~/.cache/harness``.

    Plugins keep what they install or prepare (an npm package, an emulated root) under it; a run
    started with ``--cache-dir`` sets the variable for its workers, so plugins see the same folder.
    """
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "harness")
