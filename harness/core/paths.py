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

    Plugins keep what they install or prepare (an npm package, an emulated root) under it; a run
    started with ``--cache-dir`` sets the variable for its workers, so plugins see the same folder.
    """
    return Path(os.environ.get(CACHE_ENV) or default_cache_dir())
