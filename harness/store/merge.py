"""``harness merge``: results of several machines' leaderboards in one file, without duplicates.

A run is identified by its content (suite-file hash, machine hash and start time), a cell by its
run and cell key; ids are remapped. Merging the same file twice adds nothing. When two files hold
the same cell of the same run (a run copied before it was resumed), the first one merged is kept;
the run's status and end are the most final of its copies (``complete`` over ``interrupted`` over
``running``), so a partial copy merged before the full one does not leave the run ``running``.

Sources are checked as every command checks a database (:func:`harness.store.check.check_store`:
corrupt, foreign and newer-schema files are refused) and read through SQLite (its backup API into
a private copy that is then migrated), never by copying files: a hot journal is honoured.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import UsageError
from harness.store.check import check_store, readonly_uri
from harness.store.db import NoDatabase, Store, migration_names

RUN_IDENTITY = ("suite_sha256", "machine_hash", "started_at")
#: How final a run's status is: a merged run takes the most final of its copies.
_FINALITY = {"running": 0, "interrupted": 1, "complete": 2}


class MergeError(UsageError, ValueError):
    """The files cannot be merged as named (a source is also the output)."""


@dataclass
class MergeReport:
    """What :func:`merge` added, per source file."""

    runs_added: int = 0
    runs_matched: int = 0
    cells_added: int = 0
    cells_skipped: int = 0
    measurements_added: int = 0
    per_source: dict = field(default_factory=dict)


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def merge(sources: list[str | Path], out: str | Path) -> MergeReport:
    """Merge the leaderboards ``sources`` into ``out`` (created when missing, kept when present)."""
    for src in sources:
        if not Path(src).is_file():
            raise NoDatabase(f"no leaderboard database at {src}", file=str(src))
        if Path(src).resolve() == Path(out).resolve():
            raise MergeError(f"{src} is the output file; name a different -o", file=str(src), key="-o")
        check_store(src, known=migration_names())
    Store(out).close()  # create or migrate the output
    report = MergeReport()
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(sources):
            # A migrated private copy: sources may be older schemas, and are never written.
            copy = Path(tmp) / f"source{i}.db"
            _copy_through_sqlite(Path(src), copy)
            Store(copy).close()
            before = (report.runs_added, report.cells_added)
            _merge_one(copy, Path(out), report)
            report.per_source[str(src)] = {"runs_added": report.runs_added - before[0],
                                           "cells_added": report.cells_added - before[1]}
    return report


def _copy_through_sqlite(src: Path, copy: Path) -> None:
    """Copy the database ``src`` into ``copy`` with SQLite's backup API (what a reader sees, journal honoured)."""
    reader = sqlite3.connect(readonly_uri(src), uri=True)
    writer = sqlite3.connect(copy)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()


def _merge_one(src: Path, out: Path, report: MergeReport) -> None:
    conn = sqlite3.connect(out)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("ATTACH DATABASE ? AS src", [str(src)])
        with conn:
            conn.execute("INSERT INTO main.metrics (name, suite, unit, higher_is_better, description) SELECT name, "
                         "suite, unit, higher_is_better, description FROM src.metrics WHERE name NOT IN "
                         "(SELECT name FROM main.metrics)")
            run_cols = [c for c in _columns(conn, "src", "runs") if c != "id" and c in _columns(conn, "main", "runs")]
            conn.execute("CREATE TEMP TABLE run_map (src INTEGER PRIMARY KEY, dst INTEGER)")
            for row in conn.execute(f"SELECT id, {', '.join(run_cols)} FROM src.runs ORDER BY id").fetchall():
                fields = dict(zip(run_cols, row[1:]))
                found = conn.execute("SELECT id FROM main.runs WHERE suite_sha256 IS ? AND machine_hash IS ? "
                                     "AND started_at IS ?", [fields[k] for k in RUN_IDENTITY]).fetchone()
                if found:
                    dst = found[0]
                    report.runs_matched += 1
                    _take_final_status(conn, dst, fields)
                else:
                    dst = conn.execute(f"INSERT INTO main.runs ({', '.join(run_cols)}) VALUES "
                                       f"({', '.join('?' * len(run_cols))})", list(fields.values())).lastrowid
                    report.runs_added += 1
                conn.execute("INSERT INTO run_map VALUES (?, ?)", [row[0], dst])
            conn.execute("""
                CREATE TEMP TABLE cell_map AS
                SELECT c.id AS src, rm.dst AS run_dst,
                       (SELECT coalesce(max(id), 0) FROM main.cells) + row_number() OVER (ORDER BY c.id) AS dst
                FROM src.cells c JOIN run_map rm ON rm.src = c.run_id
                WHERE NOT EXISTS (SELECT 1 FROM main.cells d WHERE d.run_id = rm.dst AND d.cell_key = c.cell_key)""")
            total = conn.execute("SELECT count(*) FROM src.cells").fetchone()[0]
            added = conn.execute("SELECT count(*) FROM cell_map").fetchone()[0]
            report.cells_added += added
            report.cells_skipped += total - added
            cell_cols = [c for c in _columns(conn, "src", "cells") if c not in ("id", "run_id")
                         and c in _columns(conn, "main", "cells")]
            conn.execute(f"INSERT INTO main.cells (id, run_id, {', '.join(cell_cols)}) SELECT cm.dst, cm.run_dst, "
                         f"{', '.join('c.' + c for c in cell_cols)} FROM src.cells c JOIN cell_map cm ON cm.src = c.id")
            conn.execute("""
                CREATE TEMP TABLE sample_map AS
                SELECT s.id AS src, cm.dst AS cell_dst,
                       (SELECT coalesce(max(id), 0) FROM main.sample_sets) + row_number() OVER (ORDER BY s.id) AS dst
                FROM src.sample_sets s JOIN cell_map cm ON cm.src = s.cell_id""")
            conn.execute("INSERT INTO main.sample_sets (id, cell_id, name, unit, n, samples) SELECT sm.dst, "
                         "sm.cell_dst, s.name, s.unit, s.n, s.samples FROM src.sample_sets s "
                         "JOIN sample_map sm ON sm.src = s.id")
            meas_cols = [c for c in _columns(conn, "src", "measurements")
                         if c not in ("id", "run_id", "cell_id", "sample_set_id")
                         and c in _columns(conn, "main", "measurements")]
            cur = conn.execute(
                f"INSERT INTO main.measurements (run_id, cell_id, sample_set_id, {', '.join(meas_cols)}) "
                f"SELECT cm.run_dst, cm.dst, sm.dst, {', '.join('m.' + c for c in meas_cols)} "
                f"FROM src.measurements m JOIN cell_map cm ON cm.src = m.cell_id "
                f"LEFT JOIN sample_map sm ON sm.src = m.sample_set_id ORDER BY m.id")
            report.measurements_added += cur.rowcount
            for t in ("run_map", "cell_map", "sample_map"):
                conn.execute(f"DROP TABLE temp.{t}")
        conn.execute("DETACH DATABASE src")
    finally:
        conn.close()


def _take_final_status(conn: sqlite3.Connection, dst: int, src: dict) -> None:
    """Give run ``dst`` the status and end of its copy ``src`` when that copy's status is more final."""
    have = conn.execute("SELECT status FROM main.runs WHERE id = ?", [dst]).fetchone()[0]
    if _FINALITY.get(src.get("status"), -1) > _FINALITY.get(have, -1):
        conn.execute("UPDATE main.runs SET status = ?, finished_at = ? WHERE id = ?",
                     [src["status"], src.get("finished_at"), dst])
