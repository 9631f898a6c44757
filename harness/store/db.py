"""The leaderboard store: SQLite through sqlite-utils, schema by append-only named migrations.

The driver is the only writer: one transaction per cell (the cell row, its
measurements and their raw samples together), so an interrupted run never
leaves half a cell behind, and ``UNIQUE(run_id, cell_key)`` means a result is
never duplicated. Reading opens the file read-only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import sqlite_utils
from sqlite_utils.migrations import Migrations

from harness.core.clock import now
from harness.core.identity import canonical
from harness.core.paths import DEFAULT_DB  # noqa: F401 - the store's default file, defined once in core.paths
from harness.store.check import NoDatabase, check_store, readonly_uri  # noqa: F401 - NoDatabase: re-exported
from harness.store.guard import GuardedConnection
from harness.store.lock import migration_lock

migrations = Migrations("harness")


@migrations(name="m001_runs_cells_measurements")
def _m001(db: sqlite_utils.Database) -> None:
    """Runs with provenance, one row per cell, long measurements, raw sample sets, metric catalogue."""
    db["runs"].create({
        "id": int, "suite_name": str, "suite_path": str, "suite_sha256": str, "suite_text": str,
        "suite_version": str, "seeds": str, "harness_version": str, "plugins": str,
        "git_revision": str, "machine": str, "machine_hash": str, "argv": str,
        "started_at": str, "finished_at": str, "status": str,
    }, pk="id")
    db["runs"].create_index(["suite_sha256"])
    db["cells"].create({
        "id": int, "run_id": int, "cell_key": str, "artifact_group": str, "artifact_key": str,
        "model": str, "model_params": str, "dataset": str, "dataset_params": str,
        "method": str, "method_params": str, "seed": int, "backend": str, "backend_params": str,
        "suite": str, "status": str, "reason": str, "error_type": str, "traceback": str,
        "plugins": str, "info": str, "implicit": int,
        "started_at": str, "finished_at": str, "duration_s": float,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")])
    db["cells"].create_index(["run_id", "cell_key"], unique=True)
    db["cells"].create_index(["cell_key"])
    db["measurements"].create({
        "id": int, "run_id": int, "cell_id": int, "metric": str, "value": float, "unit": str,
        "params": str, "stats": str, "info": str, "sample_set_id": int,
    }, pk="id", foreign_keys=[("cell_id", "cells", "id"), ("run_id", "runs", "id")])
    db["measurements"].create_index(["cell_id"])
    db["measurements"].create_index(["metric"])
    db["sample_sets"].create({
        "id": int, "cell_id": int, "name": str, "unit": str, "n": int, "samples": str,
    }, pk="id", foreign_keys=[("cell_id", "cells", "id")])
    db["metrics"].create({
        "name": str, "suite": str, "unit": str, "higher_is_better": int, "description": str,
    }, pk="name")


@migrations(name="m002_result_views")
def _m002(db: sqlite_utils.Database) -> None:
    """Views: every measurement with its cell and run, and the latest successful result per cell."""
    db.execute("""
        CREATE VIEW results AS
        SELECT m.id AS measurement_id, c.run_id, c.id AS cell_id, c.cell_key,
               c.model, c.model_params, c.dataset, c.dataset_params, c.method, c.method_params,
               c.seed, c.backend, c.backend_params, c.suite, m.metric, m.value, m.unit,
               m.params, m.stats, m.info, m.sample_set_id, r.machine_hash, c.finished_at
        FROM measurements m JOIN cells c ON m.cell_id = c.id JOIN runs r ON r.id = c.run_id
    """)
    db.execute("""
        CREATE VIEW latest_cells AS
        SELECT c.* FROM cells c
        WHERE c.status = 'ok' AND c.id = (
            SELECT c2.id FROM cells c2 WHERE c2.cell_key = c.cell_key AND c2.status = 'ok'
            ORDER BY c2.finished_at DESC, c2.id DESC LIMIT 1)
    """)
    db.execute("""
        CREATE VIEW latest_results AS
        SELECT r.* FROM results r JOIN latest_cells l ON r.cell_id = l.id
    """)


@migrations(name="m003_run_tags")
def _m003(db: sqlite_utils.Database) -> None:
    """runs.tag: a name such as ``nightly`` that compare and history select runs by."""
    db["runs"].add_column("tag", str)
    db["runs"].create_index(["tag"])


@migrations(name="m004_measurement_flags")
def _m004(db: sqlite_utils.Database) -> None:
    """measurements.flag: why a result failed a gate (quality, soundness); a flagged row is never ranked."""
    db["measurements"].add_column("flag", str)


@migrations(name="m005_latest_per_machine_and_query_indexes")
def _m005(db: sqlite_utils.Database) -> None:
    """Latest result per cell *and machine* (latency from different machines never mixes), flags and
    tags in the views, and indexes that keep leaderboard, history and comparison queries fast."""
    for view in ("latest_results", "latest_cells", "results"):
        db.execute(f"DROP VIEW IF EXISTS {view}")
    # The latest-cell aggregate walks this index in group order; model, dataset, method and backend
    # are grouped on too (they follow from cell_key) so that filters on them reach inside the view.
    db.execute("CREATE INDEX idx_cells_latest ON cells "
               "(status, cell_key, model, dataset, method, backend, run_id, finished_at, id)")
    db.execute("CREATE INDEX idx_runs_machine ON runs (machine_hash, started_at)")
    db.execute(f"""
        CREATE VIEW results AS
        SELECT {_M005_RESULT_COLUMNS.format(c="c")}, r.machine_hash, r.tag, c.finished_at
        FROM measurements m JOIN cells c ON m.cell_id = c.id JOIN runs r ON r.id = c.run_id
    """)
    # One row per (cell_key, machine_hash): the newest ok cell. SQLite takes the bare columns of an
    # aggregate query from the row that holds max(), which avoids a correlated subquery per cell.
    rest = ", ".join(f"c.{col}" for col in _M005_CELL_COLUMNS if col not in _M005_GROUPED)
    db.execute(f"""
        CREATE VIEW latest_cells AS
        SELECT {rest}, {", ".join(f"l.{col}" for col in _M005_GROUPED)}, l.machine_hash FROM (
            SELECT c2.id AS cell_id, {", ".join(f"c2.{col}" for col in _M005_GROUPED)}, r2.machine_hash,
                   max(coalesce(c2.finished_at, '') || printf('%020d', c2.id)) AS newest
            FROM cells c2 JOIN runs r2 ON r2.id = c2.run_id
            WHERE c2.status = 'ok'
            GROUP BY c2.cell_key, {", ".join(f"c2.{col}" for col in _M005_GROUPED)}, r2.machine_hash
        ) l JOIN cells c ON c.id = l.cell_id
    """)
    db.execute(f"""
        CREATE VIEW latest_results AS
        SELECT {_M005_RESULT_COLUMNS.format(c="l")}, l.machine_hash, r.tag, l.finished_at
        FROM latest_cells l JOIN measurements m ON m.cell_id = l.id JOIN runs r ON r.id = l.run_id
    """)


@migrations(name="m006_total_params_metric")
def _m006(db: sqlite_utils.Database) -> None:
    """The size suite's metric ``params`` is ``total_params``: ``params`` is also the JSON column of every
    measurement (``WHERE metric = 'params'`` beside ``json_extract(params, ...)`` read as one thing)."""
    db.execute("UPDATE measurements SET metric = 'total_params' WHERE metric = 'params' "
               "AND cell_id IN (SELECT id FROM cells WHERE suite = 'size')")
    db.execute("UPDATE OR IGNORE metrics SET name = 'total_params', "
               "description = 'parameters of the artifact' WHERE name = 'params' AND suite = 'size'")
    db.execute("DELETE FROM metrics WHERE name = 'params' AND suite = 'size'")


_M005_GROUPED = ("model", "dataset", "method", "backend")
_M005_CELL_COLUMNS = (
    "id", "run_id", "cell_key", "artifact_group", "artifact_key", "model", "model_params", "dataset",
    "dataset_params", "method", "method_params", "seed", "backend", "backend_params", "suite", "status", "reason",
    "error_type", "traceback", "plugins", "info", "implicit", "started_at", "finished_at", "duration_s")
_M005_RESULT_COLUMNS = (
    "m.id AS measurement_id, {c}.run_id, {c}.id AS cell_id, {c}.cell_key, {c}.model, {c}.model_params, "
    "{c}.dataset, {c}.dataset_params, {c}.method, {c}.method_params, {c}.seed, {c}.backend, {c}.backend_params, "
    "{c}.suite, m.metric, m.value, m.unit, m.params, m.stats, m.info, m.sample_set_id, m.flag")


def to_json(obj: Any) -> str:
    """How the store encodes params, stats and info: :func:`harness.core.identity.canonical`'s stored form
    (sorted keys, so equal objects compare equal as text; ``compact=False``, the text existing databases hold)."""
    return canonical(obj, compact=False)


class CellRow(TypedDict, total=False):
    """What :meth:`Store.record_cell` writes to ``cells``: its columns (dicts and lists are JSON-encoded).

    ``cell_key``, ``status`` and the identity columns are required by the schema's use, the rest may
    be missing (``NULL``).
    """

    cell_key: str
    artifact_group: str
    artifact_key: str | None
    model: str
    model_params: dict
    dataset: str
    dataset_params: dict
    method: str
    method_params: dict
    seed: int
    backend: str | None
    backend_params: dict
    suite: str
    status: str
    reason: str | None
    error_type: str | None
    traceback: str | None
    plugins: dict
    info: dict
    implicit: int
    started_at: str | None
    finished_at: str | None
    duration_s: float | None


class MeasurementRow(TypedDict):
    """One measurement as :meth:`Store.record_cell` takes it: the fields of :class:`harness.api.Measurement`
    (``dataclasses.asdict`` of one), of which only ``metric``, ``value`` and ``unit`` are required."""

    metric: str
    value: float | None
    unit: str
    params: NotRequired[dict]
    stats: NotRequired[dict]
    samples: NotRequired[list[float] | None]
    info: NotRequired[dict]
    flag: NotRequired[str | None]
    #: the sample set's name when it is not :func:`sample_set_name` of the metric and params.
    samples_name: NotRequired[str]


def sample_set_name(metric: str, params: Mapping[str, Any]) -> str:
    """The name of a measurement's raw sample set: ``p50_ms@batch_size=1`` (metric, then sorted params)."""
    return metric + "".join(f"@{k}={v}" for k, v in sorted(params.items()))


#: Seconds a writer waits for another writer's lock on the database before giving up.
WRITER_BUSY_TIMEOUT_S = 120.0


class Store:
    """The writer's handle on a leaderboard database (the driver holds the only one)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if str(path) == ":memory:":
            self.db = sqlite_utils.Database(str(path))
            self._migrate()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Two writers opening one new database at the same instant would both see it new and both
        # apply the first migration (sqlite-utils decides what is pending outside a transaction):
        # the check and the migrations run under a short lock, the second writer waits.
        with migration_lock(self.path):
            # Before the first write: a file that is not a store of a known schema is never touched.
            check_store(self.path, known=migration_names(), writing=True)
            # Drivers of different suites share a database: a writer waits for another's commit (each
            # cell is one short transaction) rather than failing at sqlite3's default of 5 s, which a
            # loaded machine can exceed.
            self.db = sqlite_utils.Database(sqlite3.connect(str(path), timeout=WRITER_BUSY_TIMEOUT_S))
            self._migrate()

    def _migrate(self) -> None:
        # Rollback journal, not WAL: a WAL database cannot be opened read-only by a reader
        # without write access to its folder, and reading must never need write access.
        self.db.execute("PRAGMA foreign_keys=ON")
        migrations.apply(self.db)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # ----------------------------------------------------------------- runs

    def create_run(self, **fields: Any) -> int:
        """Insert a run; JSON-encodes dict and list fields. Returns its id."""
        row = {k: (to_json(v) if isinstance(v, (dict, list)) else v) for k, v in fields.items()}
        row.setdefault("started_at", now())
        row.setdefault("status", "running")
        with self.db.atomic():
            return self.db["runs"].insert(row).last_pk

    def finish_run(self, run_id: int, status: str) -> None:
        """Mark a run finished (``complete``; or ``interrupted``)."""
        with self.db.atomic():
            self.db["runs"].update(run_id, {"finished_at": now(), "status": status})

    def reopen_run(self, run_id: int) -> None:
        """A resumed run is running again."""
        with self.db.atomic():
            self.db["runs"].update(run_id, {"status": "running", "finished_at": None})

    def latest_run_for_suite(self, suite_sha256: str, tag: str | None = None) -> dict | None:
        """The newest run of exactly this suite-file content and ``tag`` (``None``: untagged), or ``None``."""
        rows = list(self.db.query(
            "SELECT * FROM runs WHERE suite_sha256 = ? AND tag IS ? ORDER BY id DESC LIMIT 1", [suite_sha256, tag]))
        return rows[0] if rows else None

    def cell_statuses(self, run_id: int) -> dict[str, str]:
        """``{cell_key: status}`` of the cells recorded in a run."""
        return {r["cell_key"]: r["status"] for r in self.db.query(
            "SELECT cell_key, status FROM cells WHERE run_id = ?", [run_id])}

    def measurement_values(self, run_id: int, cell_key: str) -> list[tuple[str, str, float]]:
        """``(metric, params JSON, value)`` of an ok cell of a run (a baseline's values), or ``[]``."""
        return [(r["metric"], r["params"], r["value"]) for r in self.db.query(
            "SELECT m.metric, m.params, m.value FROM measurements m JOIN cells c ON m.cell_id = c.id "
            "WHERE c.run_id = ? AND c.cell_key = ? AND c.status = 'ok'", [run_id, cell_key])]

    def register_metrics(self, suite: str, metrics: Iterable[Any]) -> None:
        """Upsert the metric catalogue (name, unit, direction, description)."""
        rows = [{"name": m.name, "suite": suite, "unit": m.unit,
                 "higher_is_better": None if m.higher_is_better is None else int(m.higher_is_better),
                 "description": m.description} for m in metrics]
        if rows:
            with self.db.atomic():
                self.db["metrics"].upsert_all(rows, pk="name")

    # ----------------------------------------------------------------- cells

    def record_cell(self, run_id: int, cell: CellRow, measurements: Iterable[MeasurementRow]) -> int:
        """Write one cell with its measurements and samples in a single transaction.

        ``cell`` holds the columns of ``cells``; each measurement the fields of a
        :class:`harness.api.Measurement`: its ``samples`` (when not ``None``) become a sample set in the
        measurement's unit, shared by the measurements that name the same set. A failed record of the
        same cell in this run is replaced.
        """
        row = {k: (to_json(v) if isinstance(v, (dict, list)) else v) for k, v in cell.items()}
        row["run_id"] = run_id
        with self.db.atomic():
            self.db.execute("DELETE FROM measurements WHERE cell_id IN (SELECT id FROM cells WHERE "
                            "run_id = ? AND cell_key = ? AND status = 'failed')", [run_id, row["cell_key"]])
            self.db.execute("DELETE FROM sample_sets WHERE cell_id IN (SELECT id FROM cells WHERE "
                            "run_id = ? AND cell_key = ? AND status = 'failed')", [run_id, row["cell_key"]])
            self.db.execute("DELETE FROM cells WHERE run_id = ? AND cell_key = ? AND status = 'failed'",
                            [run_id, row["cell_key"]])
            cell_id = self.db["cells"].insert(row).last_pk
            sample_ids: dict[str, int] = {}
            for m in measurements:
                sid = None
                if m.get("samples") is not None:
                    name = m.get("samples_name") or sample_set_name(m["metric"], m.get("params") or {})
                    if name not in sample_ids:
                        samples = m["samples"]
                        sample_ids[name] = self.db["sample_sets"].insert({
                            "cell_id": cell_id, "name": name, "unit": m["unit"],
                            "n": len(samples), "samples": json.dumps(samples),
                        }).last_pk
                    sid = sample_ids[name]
                self.db["measurements"].insert({
                    "run_id": run_id, "cell_id": cell_id, "metric": m["metric"], "value": m["value"],
                    "unit": m["unit"], "params": to_json(m.get("params", {})),
                    "stats": to_json(m.get("stats", {})), "info": to_json(m.get("info", {})),
                    "sample_set_id": sid, "flag": m.get("flag"),
                })
        return cell_id


def migration_names() -> list[str]:
    """The names of the migrations this version knows, in order."""
    return [m.name for m in migrations._migrations]


def open_readonly(path: str | Path, *, timeout_s: float | None = None) -> GuardedConnection:
    """Open a leaderboard for reading only, through the checks of :func:`harness.store.check.check_store`.

    The connection is ``mode=ro`` (works on files the reader cannot write) and guarded
    (:mod:`harness.store.guard`: reads only, every statement under a time limit of ``timeout_s``,
    default :func:`harness.store.guard.default_timeout`). Raises :class:`NoDatabase` or
    :class:`harness.store.check.BadDatabase` (usage errors naming the file and the reason).
    """
    p = Path(path)
    check_store(p, known=migration_names())
    conn = sqlite3.connect(readonly_uri(p), uri=True, factory=GuardedConnection)
    conn.row_factory = sqlite3.Row
    return conn.guard(timeout_s)
