"""Cache entries on disk: every entry is built in a temporary folder and published by one rename."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def publish(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final`` in one rename, so no reader sees half an entry.

    When another process published ``final`` first (the same content, built concurrently), its copy
    is kept and ``tmp`` is removed.
    """
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
