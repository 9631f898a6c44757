"""``harness sql``: read-only SQL on the leaderboard."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from harness.query.refs import QueryError
from harness.store.check import open_readonly
from harness.store.guard import QueryRefused


def run_sql(db: str | Path, query: str, params: list | None = None, *, timeout_s: float | None = None) -> Any:
    """Run one SQL statement on a read-only, guarded connection; returns a DataFrame of its rows.

    Three locks keep it reading: the file is opened ``mode=ro``, the connection is ``query_only``
    and an SQLite authorizer (:mod:`harness.store.guard`) refuses ATTACH, DETACH, ``VACUUM INTO``,
    writes and state-changing PRAGMAs before they run, so no file is created or changed. A refused
    statement raises :class:`harness.store.guard.QueryRefused`, a syntax error
    :class:`harness.query.refs.QueryError`; the statement stops after ``timeout_s`` (default
    :func:`harness.store.guard.default_timeout`) with :class:`harness.store.guard.QueryTimeout`, and
    on Ctrl-C with :class:`KeyboardInterrupt`.
    """
    import pandas as pd

    conn = open_readonly(db, timeout_s=timeout_s)
    try:
        conn.execute("PRAGMA query_only = ON")  # refuses writes to temp tables too
        try:
            cursor = conn.execute(query, params or [])
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            text = str(exc)
            if conn.denied or "not authorized" in text or "authorization denied" in text:
                raise QueryRefused(f"refused: harness sql is read-only, and this statement would "
                                   f"{conn.denied or 'do more'} ({text}); nothing was run") from None
            if "readonly" in text or "read-only" in text or "query_only" in text:
                raise QueryRefused(f"refused: harness sql is read-only and this statement writes ({text}); "
                                   f"open the file with sqlite3 to change it") from None
            raise QueryError(f"SQL error: {text}") from None
        columns = [d[0] for d in cursor.description or []]
        return pd.DataFrame([tuple(r) for r in rows], columns=columns)
    finally:
        conn.close()
