"""The harness's default paths and the environment variables that override them, defined once.

The CLI's options, the driver's defaults and the store read these names; nothing else spells them.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The leaderboard database every command reads or writes unless ``--db`` (or ``$HARNESS_DB``) says otherwise.
DEFAULT_DB = "results/leaderboard.db"
DB_ENV = "HARNESS_DB"
#: Where ``harness report`` writes its HTML page unless ``-o`` says otherwise.
DEFAULT_REPORT = "results/report.html"
CACHE_ENV = "HARNESS_CACHE_DIR"
#: A folder whose ``*.py`` files are loaded as plugins (the CLI's ``--plugins-dir``).
PLUGINS_DIR_ENV = "HARNESS_PLUGINS_DIR"


def default_cache_dir() -> Path:
    """The cache folder when ``$HARNESS_CACHE_DIR`` is not set: ``~/.cache/harness``."""
    return Path.home() / ".cache" / "harness"


def cache_dir() -> Path:
    """The cache folder: ``$HARNESS_CACHE_DIR``, else ``~/.cache/harness``.

    Plugins keep what they install or prepare (an npm package, an emulated root) under it; a worker
    serves the folder its task names (:func:`use_cache_dir`), so plugins see the run's folder.
    """
    return Path(os.environ.get(CACHE_ENV) or default_cache_dir())


def use_cache_dir(path: str | Path) -> None:
    """Make ``path`` the cache folder of this process and of the processes it starts.

    A worker calls it with the folder its task carries: plugins in the worker call :func:`cache_dir`,
    and what they start (a timing process, a verifier, a runner) inherits the folder with the environment.
    """
    os.environ[CACHE_ENV] = str(Path(path))
