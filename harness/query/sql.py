"""``harness sql``: read-only SQL on the leaderboard."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from harness.query.refs import QueryError
from harness.store.db import open_readonly


def run_sql(db: str | Path, query: str, params: list | None = None) -> Any:
    """Run one SQL statement on a read-only connection; returns a DataFrame of its rows.

    The file is opened read-only and the connection is ``query_only``, so a write is refused
    (:class:`harness.query.refs.QueryError` naming the reason), as is a syntax error.
    """
    import pandas as pd

    conn = open_readonly(db)
    try:
        conn.execute("PRAGMA query_only = ON")  # refuses writes to temp tables too
        try:
            cursor = conn.execute(query, params or [])
        except sqlite3.Error as exc:
            text = str(exc)
            if "readonly" in text or "read-only" in text or "query_only" in text:
                raise QueryError(f"refused: harness sql is read-only and this statement writes ({text}); "
                                 f"open the file with sqlite3 to change it") from None
            raise QueryError(f"SQL error: {text}") from None
        columns = [d[0] for d in cursor.description or []]
        return pd.DataFrame([tuple(r) for r in cursor.fetchall()], columns=columns)
    finally:
        conn.close()
