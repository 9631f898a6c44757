"""Naming runs and machines in queries: run references, tags, machine fingerprints.

A run reference is a run id, ``latest``, ``previous`` or a tag. Machines are named by a prefix of
``runs.machine_hash`` (``machine`` columns show the first :data:`SHORT` characters), ``all``, or
left out for the machine of the latest run.
"""

from __future__ import annotations

import json
import re
import sqlite3

from harness.core.errors import UsageError

#: Characters of a machine hash shown in ``machine`` columns and accepted as a prefix.
SHORT = 8
RESERVED = ("latest", "previous", "all")
TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")


class QueryError(UsageError, ValueError):
    """A query names a run, machine, metric or value that does not fit; the message says which and why."""


def check_tag(tag: str | None) -> str | None:
    """Return ``tag`` when it can name runs, else raise :class:`QueryError` saying why."""
    if tag is None:
        return None
    if tag in RESERVED:
        raise QueryError(f"tag {tag!r} is reserved (it means something else in run references: "
                         f"{', '.join(RESERVED)})")
    if not TAG_RE.match(tag):
        raise QueryError(f"tag {tag!r} must start with a letter and hold only letters, digits, '.', '_' or '-' "
                         f"(at most 64 characters)")
    return tag


_ORDER = "ORDER BY started_at DESC, id DESC"


def _one(conn: sqlite3.Connection, sql: str, params: list) -> dict | None:
    row = conn.execute(sql, params).fetchone()
    return dict(row) if row is not None else None


def resolve_run(conn: sqlite3.Connection, ref: str, *, before: dict | None = None) -> dict:
    """The run row that ``ref`` names.

    ``ref`` is a run id, ``latest`` (the newest run), ``previous`` or a tag. With ``before`` (the
    other side of a comparison), ``previous`` is the newest run before it on the same machine, of
    the same suite file and tag, and a tag is the newest run with that tag before it; without,
    ``previous`` is the run before the latest one in that sense. Raises :class:`QueryError` when
    nothing matches.
    """
    conn.row_factory = sqlite3.Row
    ref = str(ref).strip()
    if ref.isdigit():
        row = _one(conn, "SELECT * FROM runs WHERE id = ?", [int(ref)])
        if row is None:
            ids = [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY id")]
            raise QueryError(f"no run {ref} (runs: {_ranges(ids) or 'none'})")
        return row
    if ref == "latest":
        row = _one(conn, f"SELECT * FROM runs {_ORDER} LIMIT 1", [])
        if row is None:
            raise QueryError("no runs in the database")
        return row
    if ref == "previous":
        anchor = before or resolve_run(conn, "latest")
        row = _one(conn, f"SELECT * FROM runs WHERE suite_sha256 IS ? AND tag IS ? AND machine_hash IS ? AND "
                         f"id != ? AND (started_at < ? OR (started_at = ? AND id < ?)) {_ORDER} LIMIT 1",
                   [anchor["suite_sha256"], anchor["tag"], anchor["machine_hash"], anchor["id"],
                    anchor["started_at"], anchor["started_at"], anchor["id"]])
        if row is None:
            tag = f" tagged {anchor['tag']!r}" if anchor["tag"] else " without a tag"
            raise QueryError(f"'previous': no run of suite {anchor['suite_name']!r}{tag} on machine "
                             f"{describe_machine(anchor)} before run {anchor['id']} (the same machine, suite file "
                             f"and tag are needed)")
        return row
    if not TAG_RE.match(ref):
        raise QueryError(f"run reference {ref!r} is not a run id, 'latest', 'previous' or a tag")
    if before is not None:
        row = _one(conn, f"SELECT * FROM runs WHERE tag = ? AND id != ? AND started_at <= ? {_ORDER} LIMIT 1",
                   [ref, before["id"], before["started_at"]])
    else:
        row = _one(conn, f"SELECT * FROM runs WHERE tag = ? {_ORDER} LIMIT 1", [ref])
    if row is None:
        tags = [r[0] for r in conn.execute("SELECT DISTINCT tag FROM runs WHERE tag IS NOT NULL ORDER BY tag")]
        where = f" before run {before['id']}" if before is not None else ""
        raise QueryError(f"no run tagged {ref!r}{where} (tags: {', '.join(tags) or 'none'})")
    return row


def _ranges(ids: list[int]) -> str:
    if not ids:
        return ""
    return f"{ids[0]}" if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"


def describe_machine(run: dict) -> str:
    """``abcd1234 (Intel Xeon ..., 2 cores)``: a run's machine for messages."""
    try:
        fp = json.loads(run.get("machine") or "{}")
    except (TypeError, ValueError):
        fp = {}
    bits = [b for b in (fp.get("cpu_model"), f"{fp['logical_cores']} cores" if fp.get("logical_cores") else None,
                        fp.get("hostname")) if b]
    short = (run.get("machine_hash") or "?")[:SHORT]
    return f"{short} ({', '.join(bits)})" if bits else short


def resolve_machine(conn: sqlite3.Connection, machine: str | None) -> str | None:
    """The full machine hash that ``machine`` names; ``None`` for ``all``.

    ``None`` (the default) means the machine of the latest run; otherwise a prefix of a
    ``runs.machine_hash`` (at least 4 characters). Raises :class:`QueryError` when unknown or ambiguous.
    """
    if machine == "all":
        return None
    if machine is None:
        row = conn.execute(f"SELECT machine_hash FROM runs {_ORDER} LIMIT 1").fetchone()
        return row[0] if row else None
    known = [r[0] for r in conn.execute("SELECT DISTINCT machine_hash FROM runs WHERE machine_hash IS NOT NULL")]
    if len(machine) < 4:
        raise QueryError(f"machine {machine!r}: give at least 4 characters of a machine hash, or 'all'")
    hits = [h for h in known if h.startswith(machine)]
    if len(hits) != 1:
        listed = ", ".join(sorted(h[:SHORT] for h in known)) or "none"
        why = "matches no machine" if not hits else "matches several machines"
        raise QueryError(f"machine {machine!r} {why} (machines: {listed})")
    return hits[0]
