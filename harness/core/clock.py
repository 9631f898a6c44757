"""Timestamps as the harness writes them down (the worker stamps a cell's start, the store its end)."""

from __future__ import annotations

import datetime as _dt


def now() -> str:
    """UTC timestamp with microseconds, sortable as text."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")
