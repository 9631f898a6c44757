"""What keeps a reading connection reading: an SQLite authorizer and a time limit on every statement.

The authorizer (``sqlite3_set_authorizer``, SQLite's own way to police statements) allows reads,
the read-only PRAGMAs and scratch tables in ``temp``, and denies the rest at prepare time: ATTACH
and DETACH (and so ``VACUUM INTO``, which attaches its target, and URIs such as
``file:x.db?mode=rwc``), writes to the database, schema changes, state-changing PRAGMAs and
``load_extension``. Nothing it denies ever touches a file. The file is also opened ``mode=ro``.

The time limit is a progress handler: each statement (its execution and fetching its rows) stops
after ``timeout_s`` (:data:`DEFAULT_TIMEOUT_S`, or ``$HARNESS_QUERY_TIMEOUT_S``) with
:class:`QueryTimeout`. Ctrl-C reaches Python inside that handler, which ends the statement; the
connection re-raises it as :class:`KeyboardInterrupt`, so a runaway query stops like any command.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from harness.core.errors import UsageError

#: Seconds one statement of a reading command may run; ``$HARNESS_QUERY_TIMEOUT_S`` overrides it (0: none).
DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "HARNESS_QUERY_TIMEOUT_S"
#: The progress handler runs every this many SQLite virtual-machine instructions (microseconds apart).
_PROGRESS_STEPS = 10_000

#: PRAGMAs that only report (their argument, if any, names a table or index or bounds the report).
READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "foreign_key_check", "quick_check", "integrity_check", "collation_list", "database_list", "function_list",
    "module_list", "pragma_list", "compile_options", "data_version", "freelist_count", "page_count",
})
#: Settings a reader may read (``PRAGMA page_size``), never set (a value is denied).
READABLE_SETTINGS = frozenset({
    "application_id", "user_version", "schema_version", "encoding", "page_size", "journal_mode", "auto_vacuum",
    "foreign_keys", "query_only", "max_page_count", "cache_size", "busy_timeout",
})
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE}
_TEMP_DDL = {sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_DROP_TEMP_TABLE,
             sqlite3.SQLITE_DROP_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_VIEW, sqlite3.SQLITE_DROP_TEMP_VIEW}
_ROW_WRITES = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
_DENIED_FUNCTIONS = frozenset({"load_extension"})
_ACTIONS = (
    "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
    "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE", "DROP_INDEX", "DROP_TABLE", "DROP_TEMP_INDEX",
    "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW", "DROP_TRIGGER", "DROP_VIEW", "INSERT", "PRAGMA",
    "READ", "SELECT", "TRANSACTION", "UPDATE", "ATTACH", "DETACH", "ALTER_TABLE", "REINDEX", "ANALYZE",
    "CREATE_VTABLE", "DROP_VTABLE", "FUNCTION", "SAVEPOINT", "RECURSIVE")
_NAMES = {getattr(sqlite3, f"SQLITE_{n}"): n.replace("_", " ") for n in _ACTIONS if hasattr(sqlite3, f"SQLITE_{n}")}


class QueryRefused(UsageError, PermissionError):
    """A statement a reading connection does not run (it would write or open another file)."""


class QueryTimeout(UsageError, TimeoutError):
    """A statement ran past its time limit and was stopped."""


def default_timeout() -> float:
    """The time limit of a statement: ``$HARNESS_QUERY_TIMEOUT_S`` when set, else :data:`DEFAULT_TIMEOUT_S`."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"${TIMEOUT_ENV}={raw!r}: not a number of seconds", key=TIMEOUT_ENV) from None
    if value < 0:
        raise UsageError(f"${TIMEOUT_ENV}={raw!r}: must be 0 (no limit) or more", key=TIMEOUT_ENV)
    return value


def authorize(action: int, arg1: str | None, arg2: str | None, dbname: str | None, _source: str | None) -> int:
    """The authorizer: ``SQLITE_OK`` for what a reader may do, ``SQLITE_DENY`` for the rest (see the module)."""
    if action in _ALLOWED or action == sqlite3.SQLITE_TRANSACTION or action == sqlite3.SQLITE_SAVEPOINT:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        ok = name in READ_PRAGMAS or (name in READABLE_SETTINGS and arg2 is None) or (
            name == "query_only" and (arg2 or "").lower() in ("1", "on", "true", "yes"))  # only ever stricter
        return sqlite3.SQLITE_OK if ok else sqlite3.SQLITE_DENY
    if action in _TEMP_DDL or (action in _ROW_WRITES and dbname == "temp"):
        return sqlite3.SQLITE_OK  # scratch tables in memory: readers stage rows there
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master" and dbname == "main":
        # What SQLite asks when it sets up a table-valued PRAGMA (pragma_table_info): the file is
        # read-only, so no write can follow.
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def describe_action(action: int) -> str:
    """``ATTACH``, ``CREATE TABLE``: the authorizer action's name."""
    return _NAMES.get(action, str(action))


class GuardedCursor(sqlite3.Cursor):
    """A cursor whose statements run under the connection's time limit; see :class:`GuardedConnection`."""

    def execute(self, sql: str, parameters: Any = (), /):  # noqa: D102 - sqlite3's
        self.connection.arm()
        return self.connection.translate(super().execute, sql, parameters)

    def executemany(self, sql: str, seq: Any, /):  # noqa: D102 - sqlite3's
        self.connection.arm()
        return self.connection.translate(super().executemany, sql, seq)

    def fetchone(self):  # noqa: D102 - sqlite3's
        return self.connection.translate(super().fetchone)

    def fetchmany(self, size: int = 1):  # noqa: D102 - sqlite3's
        return self.connection.translate(super().fetchmany, size)

    def fetchall(self):  # noqa: D102 - sqlite3's
        return self.connection.translate(super().fetchall)

    def __next__(self):
        return self.connection.translate(super().__next__)


class GuardedConnection(sqlite3.Connection):
    """A read-only connection with the authorizer and a per-statement time limit (see the module)."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    #: What the authorizer last refused in the current statement (``ATTACH x.db``), for the message.
    denied: str | None = None
    _deadline: float | None = None

    def guard(self, timeout_s: float | None = None) -> GuardedConnection:
        """Install the authorizer and the time limit (``None``: :func:`default_timeout`; 0: no limit)."""
        self.timeout_s = default_timeout() if timeout_s is None else float(timeout_s)
        self.set_authorizer(self._authorize)
        self.set_progress_handler(self._progress, _PROGRESS_STEPS)
        return self

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, dbname: str | None,
                   source: str | None) -> int:
        verdict = authorize(action, arg1, arg2, dbname, source)
        if verdict == sqlite3.SQLITE_DENY:  # kept so that the refusal can say what it refused
            self.denied = " ".join(x for x in (describe_action(action), arg1 if action != sqlite3.SQLITE_FUNCTION
                                                 else arg2) if x)
        return verdict

    def arm(self) -> None:
        """Start the time limit of the next statement."""
        self._deadline = time.monotonic() + self.timeout_s if self.timeout_s > 0 else None
        self.denied = None

    def _progress(self) -> int:
        return 1 if self._deadline is not None and time.monotonic() > self._deadline else 0

    def cursor(self, factory: type = GuardedCursor) -> sqlite3.Cursor:  # noqa: D102 - sqlite3's
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # noqa: D102 - sqlite3's
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> sqlite3.Cursor:  # noqa: D102 - sqlite3's
        return self.cursor().executemany(sql, seq)

    def translate(self, call, *args):
        """Run ``call``; an interrupted statement becomes :class:`QueryTimeout` or :class:`KeyboardInterrupt`."""
        try:
            return call(*args)
        except sqlite3.OperationalError as exc:
            if str(exc) != "interrupted":
                raise
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise QueryTimeout(f"query stopped after its time limit of {self.timeout_s:g} s (raise it with "
                                   f"--timeout or ${TIMEOUT_ENV}; 0: no limit)") from None
            # Nothing but Ctrl-C (SIGINT, raised inside the progress handler) interrupts otherwise.
            raise KeyboardInterrupt("query interrupted") from None
