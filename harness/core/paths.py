"""Where the harness keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "HARNESS_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder: ``$HARNESS_CACHE_DIR``, else ``~/.cache/harness``.

    Plugins keep what they install or prepare (an npm package, an emulated root) under it; a worker
    serves the folder its task names (:func:`use_cache_dir`), so plugins see the run's folder.
    """
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "harness")


def use_cache_dir(path: str | Path) -> None:
    """Make ``path`` the cache folder of this process and of the processes it starts.

    A worker calls it with the folder its task carries: plugins in the worker call :func:`cache_dir`,
    and what they start (a timing process, a verifier, a runner) inherits the folder with the environment.
    """
    os.environ[CACHE_ENV] = str(Path(path))
