"""``harness serve``: datasette on the leaderboard, read-only, with canned queries and a described schema.

The file is served immutable (``datasette -i``: opened read-only, never written), bound to
127.0.0.1 unless told otherwise, after the checks every command makes
(:func:`harness.store.db.open_readonly`: a hot journal is rolled back first, which an immutable
open would ignore). Custom SQL and canned queries run under datasette's own time limit
(``sql_time_limit_ms``), set to the harness's query limit (:func:`harness.store.guard.default_timeout`);
datasette itself refuses any statement that is not a SELECT. The metadata describes every table
and view, and every metric from the ``metrics`` catalogue; canned queries answer the leaderboard's three questions:
ranking by a metric, a Pareto frontier of two metrics, and the changes between two runs. The two that list
many rows are paged (:data:`PAGE_ROWS` rows, ``&page=N``; each row carries ``row`` and ``total_rows``), since
datasette returns at most 1,000 rows; flags are joined by equality on a materialized table, so that they
answer at a million measurements well inside the limit. Any method but GET, HEAD and OPTIONS gets a clean
405 (:mod:`harness.report.datasette_readonly`, loaded as a datasette plugin).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.query.refs import QueryError
from harness.store.check import open_readonly
from harness.store.guard import default_timeout

#: datasette's ``sql_time_limit_ms`` when the harness's query limit is 0 (none): a day.
_NO_LIMIT_MS = 86_400_000

#: Rows per page of the canned queries that list many rows (``&page=2`` for the next): datasette returns at
#: most ``max_returned_rows`` (1,000) rows and, with ``_shape=array``, drops its ``truncated`` mark.
PAGE_ROWS = 1000
_PAGE = f"LIMIT {PAGE_ROWS} OFFSET (coalesce(CAST(nullif(:page, '') AS INTEGER), 1) - 1) * {PAGE_ROWS}"
_PAGE_TEXT = (f" {PAGE_ROWS} rows per page: &page=2 for the next; every row says how many there are in all "
              "(total_rows) and which it is (row).")

#: Flags of the latest results, per (artifact, backend, machine): a flagged row is never ranked.
#: Materialized once; rows find theirs by equality (an automatic index), not by a scan per row.
_FLAGGED = """flagged AS MATERIALIZED (
  SELECT model, dataset, method, method_params, seed, coalesce(backend, '') AS backend, machine_hash,
         group_concat(DISTINCT flag) AS flags
  FROM latest_results WHERE flag IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7)"""
#: A row's own flags and its artifact's backend-independent ones (size): ``fb`` and ``fs``.
_FLAG_JOINS = """LEFT JOIN flagged fb ON fb.model = {t}.model AND fb.dataset = {t}.dataset AND fb.method = {t}.method
   AND fb.method_params = {t}.method_params AND fb.seed = {t}.seed AND fb.machine_hash = {t}.machine_hash
   AND fb.backend = coalesce({t}.backend, '') AND {t}.backend IS NOT NULL
 LEFT JOIN flagged fs ON fs.model = {t}.model AND fs.dataset = {t}.dataset AND fs.method = {t}.method
   AND fs.method_params = {t}.method_params AND fs.seed = {t}.seed AND fs.machine_hash = {t}.machine_hash
   AND fs.backend = ''"""

#: The Pareto query's flags: a NOT EXISTS per point, which there is faster than the equality joins.
_FLAGGED_SCAN = """flagged AS (
  SELECT model, dataset, method, method_params, seed, backend, machine_hash, group_concat(DISTINCT flag) AS flags
  FROM latest_results WHERE flag IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7)"""
_SAME_ROW = ("f.model = {t}.model AND f.dataset = {t}.dataset AND f.method = {t}.method AND "
             "f.method_params = {t}.method_params AND f.seed = {t}.seed AND f.machine_hash = {t}.machine_hash AND "
             "(f.backend IS {t}.backend OR f.backend IS NULL)")

QUERIES = {
    "leaderboard": {
        "title": "Leaderboard by one metric",
        "description": "Latest result of every cell on each machine for :metric (e.g. top1, p50_ms), best "
                       "first by the metric's direction. Flagged rows (quality gate, soundness) are listed "
                       "after the ranked ones, with an empty rank. Ranks are counted within one machine."
                       + _PAGE_TEXT,
        "sql": f"""WITH {_FLAGGED},
board AS (
  SELECT l.*, CASE WHEN fb.flags IS NOT NULL AND fs.flags IS NOT NULL THEN fb.flags || '; ' || fs.flags
                   ELSE coalesce(fb.flags, fs.flags) END AS flags
  FROM latest_results l {_FLAG_JOINS.format(t='l')}
  WHERE l.metric = :metric),
ranked AS (
  SELECT CASE WHEN flags IS NULL AND value IS NOT NULL THEN row_number() OVER (
           PARTITION BY machine_hash, flags IS NULL AND value IS NOT NULL
           ORDER BY value * (CASE WHEN (SELECT higher_is_better FROM metrics WHERE name = :metric) THEN -1 ELSE 1 END),
                    model, method, method_params, backend, params)
         END AS rank,
         model, dataset, method, method_params, seed, backend, backend_params, substr(machine_hash, 1, 8) AS machine,
         params, value, unit, flags
  FROM board)
SELECT *, row_number() OVER (ORDER BY machine, rank IS NULL, rank, model, method, method_params, backend, params)
         AS row, count(*) OVER () AS total_rows
FROM ranked ORDER BY row {_PAGE}""",
    },
    "pareto": {
        "title": "Pareto frontier of two metrics",
        "description": "Entries that no other entry on the same backend and machine beats on both :maximize "
                       "(e.g. top1) and :minimize (e.g. p50_ms, at batch size 1). Flagged entries are never "
                       "on a frontier. harness leaderboard --pareto takes any two or three objectives.",
        "sql": f"""WITH {_FLAGGED_SCAN},
points AS (
  SELECT a.model, a.dataset, a.method, a.method_params, a.seed, a.backend, a.backend_params, a.machine_hash,
         a.value AS maximized, b.value AS minimized
  FROM latest_results a JOIN latest_results b
    ON b.model = a.model AND b.dataset = a.dataset AND b.method = a.method AND b.method_params = a.method_params
   AND b.seed = a.seed AND b.backend = a.backend AND b.backend_params = a.backend_params
   AND b.machine_hash = a.machine_hash
  WHERE a.metric = :maximize AND b.metric = :minimize
    AND coalesce(json_extract(a.params, '$.batch_size'), 1) = 1
    AND coalesce(json_extract(b.params, '$.batch_size'), 1) = 1
    AND a.value IS NOT NULL AND b.value IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM flagged f WHERE {_SAME_ROW.format(t='a')}))
SELECT model, dataset, method, method_params, seed, backend, backend_params, substr(machine_hash, 1, 8) AS machine,
       maximized, minimized
FROM points p WHERE NOT EXISTS (
  SELECT 1 FROM points q WHERE q.machine_hash = p.machine_hash AND q.backend = p.backend
    AND q.maximized >= p.maximized AND q.minimized <= p.minimized
    AND (q.maximized > p.maximized OR q.minimized < p.minimized))
ORDER BY machine, backend, maximized DESC""",
    },
    "regressions": {
        "title": "Changes for the worse between two runs",
        "description": "Every metric of run :new that is worse than in run :base by more than :threshold "
                       "(relative, e.g. 0.05), by the metric's direction, worst first. A quick look without "
                       "statistics: harness compare adds the significance tests and the noise floor." + _PAGE_TEXT,
        "sql": f"""WITH worse AS (
SELECT n.model, n.dataset, n.method, n.method_params, n.seed, n.backend, n.backend_params, n.metric,
       n.params, b.value AS base, n.value AS new, n.value / b.value - 1 AS change, n.unit,
       (n.value - b.value) / b.value * (CASE WHEN m.higher_is_better THEN -1 ELSE 1 END) AS worse_by
FROM results n
JOIN results b ON b.cell_key = n.cell_key AND b.metric = n.metric AND b.params = n.params
JOIN metrics m ON m.name = n.metric
WHERE n.run_id = CAST(:new AS INTEGER) AND b.run_id = CAST(:base AS INTEGER) AND b.value > 0
  AND m.higher_is_better IS NOT NULL)
SELECT model, dataset, method, method_params, seed, backend, backend_params, metric, params, base, new, change,
       unit, row_number() OVER (ORDER BY worse_by DESC, model, method, method_params, backend, metric, params) AS row,
       count(*) OVER () AS total_rows
FROM worse WHERE worse_by > CAST(:threshold AS REAL) ORDER BY row {_PAGE}""",
    },
}

TABLES = {
    "runs": ("One row per run of a suite file, with provenance.", {
        "suite_sha256": "SHA-256 of the suite file's text: equal hashes ran the same standard suite",
        "machine_hash": "fingerprint of the machine (CPU, cores, memory, OS, Python, libraries): latency is "
                        "comparable only between equal hashes",
        "tag": "a name given with harness run --tag (e.g. nightly)",
        "status": "running, complete or interrupted"}),
    "cells": ("One row per cell: (model, dataset, method + params, seed) x backend x suite, in a run.", {
        "cell_key": "hash of the cell's identity: the same cell across runs",
        "status": "ok, skipped (with a reason) or failed (with the error)",
        "backend": "empty for backend-independent suites (size)"}),
    "measurements": ("One row per measured value (the long results).", {
        "params": "what else identifies the value inside its cell, e.g. {\"batch_size\": 1}",
        "stats": "statistics behind the value (n, confidence interval, cv, ...)",
        "flag": "why the value failed a gate (quality gate, soundness); its leaderboard row is never ranked",
        "sample_set_id": "the raw samples the value was computed from"}),
    "sample_sets": ("Raw samples (latency: milliseconds per batch) behind a measurement.", {}),
    "metrics": ("The metric catalogue: unit, direction and meaning of each metric.", {
        "higher_is_better": "1 when a larger value is better, 0 when smaller is, empty when neither"}),
    "results": ("View: every measurement with its cell's identity and run.", {}),
    "latest_cells": ("View: the newest successful cell per cell key and machine.", {}),
    "latest_results": ("View: the measurements of latest_cells: what the leaderboard shows.", {}),
}


def metadata(db: str | Path) -> dict:
    """Datasette metadata for the leaderboard at ``db``: tables, views, metrics and canned queries."""
    conn = open_readonly(db)
    try:
        catalogue = conn.execute(
            "SELECT name, unit, higher_is_better, description FROM metrics ORDER BY name").fetchall()
    finally:
        conn.close()

    def direction(h):
        return "higher is better" if h == 1 else "lower is better" if h == 0 else "no better direction"

    metric_text = "; ".join(f"{n} ({u}, {direction(h)}): {d}" for n, u, h, d in catalogue)
    tables = {}
    for name, (description, columns) in TABLES.items():
        cols = dict(columns)
        if name in ("measurements", "results", "latest_results"):
            cols["metric"] = f"the metric: {metric_text}" if metric_text else "the metric (see the metrics table)"
        tables[name] = {"description": description, "columns": cols}
    return {
        "title": "harness leaderboard",
        "description": "Benchmarks of compressed neural networks: accuracy, latency and size. Read-only.",
        "databases": {Path(db).stem: {"tables": tables, "queries": QUERIES}},
    }


def serve(db: str | Path, *, port: int = 8001, host: str = "127.0.0.1") -> int:
    """Serve ``db`` with datasette until interrupted; returns datasette's exit status."""
    if importlib.util.find_spec("datasette") is None:
        raise QueryError("datasette is not installed: pip install 'compression-harness[serve]'")
    if not 0 < port < 65536:
        raise QueryError(f"--port {port}: must be between 1 and 65535")
    meta = metadata(db)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metadata.json"
        path.write_text(json.dumps(meta, indent=1))
        plugins = Path(tmp) / "plugins"  # datasette loads every .py file of this folder: only ours
        plugins.mkdir()
        shutil.copy(Path(__file__).with_name("datasette_readonly.py"), plugins)
        cmd = [sys.executable, "-m", "datasette", "serve", "-i", str(Path(db).resolve()), "--host", host,
               "--port", str(port), "--metadata", str(path), "--plugins-dir", str(plugins),
               "--setting", "sql_time_limit_ms", str(round(default_timeout() * 1000) or _NO_LIMIT_MS)]
        proc = subprocess.Popen(cmd)
        # Stopping `harness serve` (Ctrl-C or SIGTERM) stops datasette too: no orphaned server.
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            return 0
