"""The one checked way into a leaderboard database: every command, reader or writer, comes through here.

:func:`check_store` refuses, with the path and the reason (a :class:`BadDatabase`, exit status 2),
a file that is not a harness leaderboard this version can read: not an SQLite file (its header),
truncated (the header's page count against the file's size), damaged (``PRAGMA quick_check`` on
files up to :data:`QUICK_CHECK_MAX_BYTES`), a foreign SQLite database (no harness migrations), or
one written by a newer harness (applied migrations this version does not know, named). It runs on a
read-only connection, so a writer (``harness run``, ``merge``'s output) checks before it writes
anything: a file that fails is never touched.

A hot rollback journal (a writer stopped mid-transaction) is rolled back here, by opening the file
read-write for a moment, as SQLite itself would on the writer's next open; a reader that cannot
write the file and its folder gets an error that says so and what to do.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Collection
from pathlib import Path

from harness import __version__
from harness.core.errors import UsageError
from harness.store.guard import GuardedConnection

SQLITE_MAGIC = b"SQLite format 3\x00"
#: ``PRAGMA quick_check`` reads every page (75 MB/s measured on a busy 2-core machine): larger files
#: get the header checks only, and damage in them surfaces as an error when a query reaches it.
QUICK_CHECK_MAX_BYTES = 32 * 2**20
#: The table in which sqlite-utils records applied migrations, and the harness's migration set.
MIGRATIONS_TABLE = "_sqlite_migrations"
MIGRATION_SET = "harness"
#: Tables every harness leaderboard has from its first migration on.
CORE_TABLES = ("runs", "cells", "measurements", "sample_sets", "metrics")
_SQLITE_READONLY_ROLLBACK = 776  # (SQLITE_READONLY | 3 << 8): a hot journal and a read-only handle
#: Files that passed, by (path, inode, size, mtime): a command opens its database several times,
#: and a file that has not changed need not be checked again in the same process.
_PASSED: set[tuple] = set()


class NoDatabase(UsageError, FileNotFoundError):
    """There is no leaderboard database at the path given (a usage error: the message says what to pass)."""


class BadDatabase(UsageError, ValueError):
    """The file is not a leaderboard this harness may read or write; the message names it and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"database {path}: {reason}", file=str(path))
        self.path, self.reason = str(path), reason


def readonly_uri(path: str | Path) -> str:
    """The ``file:`` URI that opens ``path`` read-only (percent-encoded: ``?`` or ``#`` in a name stay a name)."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def check_store(path: str | Path, *, known: Collection[str], writing: bool = False) -> str:
    """Check that ``path`` is a harness leaderboard of a known schema; returns ``"store"`` or ``"new"``.

    ``"new"``, only when ``writing``: no file, a zero-byte file or an SQLite file without a single
    table (what ``sqlite3 x.db`` or ``mkstemp`` leave), which the writer may make a store of. A
    reader gets :class:`NoDatabase` or :class:`BadDatabase` for those. ``known`` are the migration
    names of this version. Raises :class:`BadDatabase` naming the reason otherwise.
    """
    p = Path(path)
    if not p.exists():
        if writing:
            return "new"
        raise NoDatabase(f"no leaderboard database at {p} (run 'harness run SUITE' first, or pass --db PATH)",
                         file=str(p))
    if not p.is_file():
        raise BadDatabase(p, "is not a file (a folder?): name the database file")
    size = p.stat().st_size
    if size == 0:
        if writing:
            return "new"
        raise BadDatabase(p, "is empty (0 bytes): no leaderboard has been written to it yet "
                             "(run 'harness run SUITE --db PATH' first)")
    st = p.stat()
    seen = (str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, tuple(known))
    if seen in _PASSED and not Path(f"{p}-journal").exists():
        return "store"
    _check_header(p, size)
    conn = connect_checked(p)
    try:
        verdict = _check_contents(conn, p, known=known, writing=writing)
    finally:
        conn.close()
    if verdict == "store":
        _PASSED.add(seen)
    return verdict


def _check_header(p: Path, size: int) -> None:
    """The first page's header: the SQLite magic, a valid page size, and a file as long as it says."""
    try:
        with p.open("rb") as f:
            head = f.read(100)
    except OSError as exc:
        raise BadDatabase(p, f"cannot be read ({exc.strerror or exc})") from None
    if not head.startswith(SQLITE_MAGIC):
        what = "text" if _looks_like_text(head) else "binary data"
        raise BadDatabase(p, f"is not an SQLite database (it starts with {what}, not the SQLite header "
                             f"{SQLITE_MAGIC[:15].decode()!r})")
    if len(head) < 100:
        raise BadDatabase(p, f"is truncated: {size} bytes, shorter than an SQLite header (100 bytes)")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise BadDatabase(p, f"has a damaged header (page size {page_size} is not a power of two from 512)")
    journal = Path(f"{p}-journal")
    if journal.exists() and journal.stat().st_size > 0:
        return  # a hot journal may restore the length: the size is checked once it is rolled back
    pages = int.from_bytes(head[28:32], "big")
    # The header's page count is valid when its change counter equals "version-valid-for" (SQLite >= 3.7).
    header_valid = head[24:28] == head[92:96] and pages > 0
    if header_valid and size < pages * page_size:
        raise BadDatabase(p, f"is truncated: its header says {pages} pages of {page_size} bytes "
                             f"({pages * page_size} bytes), the file has {size}")
    if size % page_size:
        raise BadDatabase(p, f"is truncated or damaged: {size} bytes is not a whole number of "
                             f"{page_size}-byte pages")


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch >= 32 or ch in b"\t\n\r" for ch in head)


def connect_checked(p: Path) -> sqlite3.Connection:
    """A read-only connection to ``p`` that has read its schema (a hot journal rolled back first).

    Raises :class:`BadDatabase` when SQLite cannot read the file at all (not a database, damaged
    first page) or a hot journal cannot be rolled back by this user.
    """
    for attempt in (1, 2):
        conn = sqlite3.connect(readonly_uri(p), uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as exc:
            conn.close()
            if getattr(exc, "sqlite_errorcode", None) == _SQLITE_READONLY_ROLLBACK and attempt == 1:
                _roll_back_hot_journal(p)
                continue
            raise BadDatabase(p, f"cannot be read by SQLite: {exc}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _roll_back_hot_journal(p: Path) -> None:
    """Let SQLite roll back ``p``'s hot journal: a read-write handle does it on its first read."""
    journal = f"{p}-journal"
    if not (os.access(p, os.W_OK) and os.access(p.parent, os.W_OK)):
        raise BadDatabase(p, f"has a hot rollback journal ({journal}): a writer stopped in the middle of a "
                             f"transaction, and SQLite must roll it back before the file can be read, which "
                             f"needs write access to the file and its folder (this user has none). Ask its "
                             f"owner to run any harness command on it, or copy both files together to a "
                             f"folder you can write")
    rw = sqlite3.connect(str(p))
    try:
        rw.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BadDatabase(p, f"has a hot rollback journal ({journal}) that SQLite could not roll back: {exc}") \
            from None
    finally:
        rw.close()


def _check_contents(conn: sqlite3.Connection, p: Path, *, known: Collection[str], writing: bool) -> str:
    """Integrity (quick_check, size-bounded), harness migrations, and no migration from the future."""
    try:
        if p.stat().st_size <= QUICK_CHECK_MAX_BYTES:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise BadDatabase(p, "is damaged (PRAGMA quick_check: " + "; ".join(problems) + ")")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and writing:
            return "new"
        applied = []
        if MIGRATIONS_TABLE in tables:
            applied = [r[0] for r in conn.execute(
                f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid", [MIGRATION_SET])]
        if not applied:
            listed = ", ".join(sorted(tables)[:8]) or "none"
            raise BadDatabase(p, f"is an SQLite database but not a harness leaderboard (no harness migrations "
                                 f"in {MIGRATIONS_TABLE}; its tables: {listed})"
                                 + ("; harness will not write into it" if writing else ""))
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise BadDatabase(p, f"was written by a newer harness: it has migrations harness {__version__} does "
                                 f"not know ({', '.join(unknown)}){_writers(conn, tables)}; upgrade "
                                 f"compression-harness to read or write it")
        missing = [t for t in CORE_TABLES if t not in tables]
        if missing:
            raise BadDatabase(p, f"is damaged: its migrations are recorded but table(s) {', '.join(missing)} "
                                 f"are missing")
    except sqlite3.DatabaseError as exc:
        raise BadDatabase(p, f"is damaged ({exc})") from None
    return "store"


def _writers(conn: sqlite3.Connection, tables: set[str]) -> str:
    """``; its runs were made by harness 0.3.0``: the versions that wrote it, when its runs say so."""
    if "runs" not in tables:
        return ""
    try:
        versions = [r[0] for r in conn.execute(
            "SELECT DISTINCT harness_version FROM runs WHERE harness_version IS NOT NULL ORDER BY 1")]
    except sqlite3.DatabaseError:
        return ""
    return f"; its runs were made by harness {', '.join(versions)}" if versions else ""


#: The schema migrations this version knows, in order. :mod:`harness.store.db` registers one function under
#: each name (sqlite-utils' ``Migrations``); they are listed here too so that reading a store never imports
#: sqlite-utils (and the pandas it pulls in): a read starts in a tenth of the time. A test checks the two agree.
MIGRATIONS = ("m001_runs_cells_measurements", "m002_result_views", "m003_run_tags", "m004_measurement_flags",
              "m005_latest_per_machine_and_query_indexes", "m006_total_params_metric")


def open_readonly(path: str | Path, *, timeout_s: float | None = None) -> GuardedConnection:
    """Open a leaderboard for reading only, through the checks of :func:`check_store`.

    The connection is ``mode=ro`` (works on files the reader cannot write) and guarded
    (:mod:`harness.store.guard`: reads only, every statement under a time limit of ``timeout_s``,
    default :func:`harness.store.guard.default_timeout`). Raises :class:`NoDatabase` or
    :class:`BadDatabase` (usage errors naming the file and the reason).
    """
    p = Path(path)
    check_store(p, known=MIGRATIONS)
    conn = sqlite3.connect(readonly_uri(p), uri=True, factory=GuardedConnection)
    conn.row_factory = sqlite3.Row
    return conn.guard(timeout_s)
