"""What a comparison of two runs reads (:mod:`harness.query.compare`): every measurement of NEW paired with
its base in SQL, and only the pairs that need a decision brought into Python.

A cell of NEW is paired with the same cell (``cell_key``) of BASE when it succeeded there with measurements,
else with the last earlier run on NEW's machine where it succeeded; their measurements are paired on
``(metric, params)``. The pairs are held in scratch tables (``temp``: the file stays read-only):
``compare_cells`` (one row per cell of NEW, in ``cell_key`` order), ``compare_sets`` (the ``(cell, params)``
that hold a sample set) and ``compare_pairs`` (one row per pair, with its change). A pair within the threshold
needs no test and is ``ok``: those are counted in SQL (:func:`quiet_counts`), the others are read row by row
(:func:`rows`), or every pair when all are to be listed.

``metrics`` (metric names, or ``None`` for all) restricts what is compared and counted; the pairing of cells
and the statistics that a sample set's measurements share never depend on it.
"""

from __future__ import annotations

import json
from typing import Any

from harness.query.refs import QueryError

_IN_METRICS = "(:metrics IS NULL OR {}.metric IN (SELECT value FROM json_each(:metrics)))"
#: The signed change of a pair: absolute for fractions and non-positive bases, else relative (as
#: :func:`harness.query.compare.change` computes it in Python, both in IEEE doubles).
_CHANGE = ("CASE WHEN coalesce(n.unit = 'fraction', 0) OR NOT coalesce(b.value > 0, 0) THEN n.value - b.value "
           "ELSE n.value / b.value - 1.0 END")
_QUIET = "NOT (p.change IS NULL OR abs(p.change) > :threshold)"
_SAMPLED = ("(EXISTS (SELECT 1 FROM compare_sets s WHERE s.cell = k.new_cell AND s.params IS p.params) AND "
            "EXISTS (SELECT 1 FROM compare_sets s WHERE s.cell = k.base_cell AND s.params IS p.params))")


def _stat(path: str) -> str:
    return f"json_extract(m.stats, '{path}')"


def _half_width(interval: str, centre: str) -> str:
    return f"({_stat(interval + '[1]')} - {_stat(interval + '[0]')}) / 2 / {_stat(centre)}"


#: What a sample set's measurement says of its spread (see :func:`sample_stats`); ``stats.cpu``: the CPU time
#: per call of the same timed calls, samples of its own, where the latency suite recorded it.
_SAMPLE_STATS = ", ".join((_stat("$.cv"), _stat("$.per_process"), _half_width("$.ci95_median_ms", "$.median_ms"),
                           _half_width("$.ci95_p10_ms", "$.p10_ms"), _stat("$.cpu.cv"),
                           _half_width("$.cpu.ci95_median_ms", "$.cpu.median_ms")))


def _has(cell: str) -> str:
    return f"EXISTS (SELECT 1 FROM measurements x WHERE x.cell_id = {cell} AND {_IN_METRICS.format('x')})"


def pair(conn: Any, base: dict, new: dict, metrics: list[str] | None) -> dict:
    """Fill the scratch tables and return ``{"only_base", "only_new", "fallback": {run id: cells}, "metrics",
    "cells"}``: cells of BASE and of NEW not compared, cells compared against an earlier run, and how many
    pairs and cells are compared."""
    p = {"base": base["id"], "new": new["id"], "machine": new["machine_hash"], "started": new["started_at"],
         "metrics": json.dumps(metrics) if metrics else None}
    for table in ("compare_pairs", "compare_sets", "compare_cells"):
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    conn.execute("CREATE TEMP TABLE compare_cells (pair INTEGER PRIMARY KEY, new_cell INTEGER, cell_key TEXT UNIQUE, "
                 "base_cell INTEGER, base_run INTEGER, new_has INTEGER, base_has INTEGER)")
    conn.execute(
        "INSERT INTO compare_cells (new_cell, cell_key, base_cell, base_run, new_has, base_has) "
        f"SELECT new_cell, cell_key, base_cell, (SELECT run_id FROM cells WHERE id = base_cell), {_has('new_cell')}, "
        f"{_has('base_cell')} FROM (SELECT nc.id AS new_cell, nc.cell_key, coalesce("
        "(SELECT bc.id FROM cells bc WHERE bc.run_id = :base AND bc.cell_key = nc.cell_key AND bc.status = 'ok' "
        "AND EXISTS (SELECT 1 FROM measurements x WHERE x.cell_id = bc.id)), "
        # Failed or missing in BASE: the last earlier run on NEW's machine where the cell succeeded.
        "(SELECT c2.id FROM cells c2 JOIN runs r2 ON r2.id = c2.run_id WHERE c2.cell_key = nc.cell_key "
        "AND c2.status = 'ok' AND r2.machine_hash = :machine AND r2.id != :new AND (r2.started_at < :started OR "
        "(r2.started_at = :started AND r2.id < :new)) ORDER BY r2.started_at DESC, r2.id DESC LIMIT 1)) AS base_cell "
        "FROM cells nc WHERE nc.run_id = :new AND nc.status = 'ok' "
        "AND EXISTS (SELECT 1 FROM measurements x WHERE x.cell_id = nc.id)) ORDER BY cell_key", p)
    conn.execute("CREATE TEMP TABLE compare_sets (cell INTEGER, params TEXT, PRIMARY KEY (cell, params)) WITHOUT ROWID")
    conn.execute("INSERT OR IGNORE INTO compare_sets SELECT m.cell_id, m.params FROM measurements m WHERE "
                 "m.sample_set_id IS NOT NULL AND m.cell_id IN (SELECT new_cell FROM compare_cells UNION ALL "
                 "SELECT base_cell FROM compare_cells)")
    conn.execute(
        f"CREATE TEMP TABLE compare_pairs AS SELECT k.pair, n.id AS new_m, b.id AS base_m, n.metric, n.unit, "
        f"n.params, {_CHANGE} AS change, (typeof(n.value) IN ('text', 'blob') OR typeof(b.value) IN ('text', "
        "'blob')) AS no_number FROM compare_cells k JOIN measurements n ON n.cell_id = k.new_cell "
        "JOIN measurements b ON b.cell_id = k.base_cell AND b.metric IS n.metric AND b.params IS n.params "
        f"WHERE {_IN_METRICS.format('n')} ORDER BY k.pair, n.id, b.id", p)
    # SQLite keeps any type in any column, and its arithmetic reads text as 0: a change computed from a text
    # "figure" would be a wrong figure, not an error. Refuse it, naming it.
    bad = conn.execute("SELECT m.cell_id, m.metric, m.value FROM compare_pairs p JOIN measurements m "
                       "ON m.id IN (p.new_m, p.base_m) WHERE p.no_number AND typeof(m.value) IN ('text', 'blob') "
                       "LIMIT 1").fetchone()
    if bad is not None:
        raise QueryError(f"cell {bad[0]}: measurement {bad[1]!r} holds {bad[2]!r}, which is no number; the store "
                         "was written or changed by something other than harness")
    only_base = conn.execute(
        f"SELECT count(*) FROM cells bc WHERE bc.run_id = :base AND bc.status = 'ok' AND {_has('bc.id')} AND NOT "
        "EXISTS (SELECT 1 FROM compare_cells k WHERE k.cell_key = bc.cell_key AND k.new_has)", p).fetchone()[0]
    only_new = conn.execute("SELECT count(*) FROM compare_cells WHERE new_has AND NOT base_has").fetchone()[0]
    fallback = dict(conn.execute("SELECT base_run, count(*) FROM compare_cells WHERE base_has AND base_run != :base "
                                 "GROUP BY base_run", p).fetchall())
    n_pairs, cells = conn.execute("SELECT count(*), count(DISTINCT pair) FROM compare_pairs").fetchone()
    return {"only_base": only_base, "only_new": only_new, "fallback": fallback, "metrics": n_pairs, "cells": cells}


def known_metrics(conn: Any, base: dict, new: dict) -> set[str]:
    """The metrics measured in either run's successful cells, or in the earlier runs' cells paired with NEW's."""
    return {r[0] for r in conn.execute(
        "SELECT DISTINCT metric FROM measurements WHERE cell_id IN (SELECT id FROM cells WHERE run_id IN (?, ?) "
        "AND status = 'ok' UNION SELECT base_cell FROM compare_cells)", [base["id"], new["id"]])}


def quiet_counts(conn: Any, threshold: float) -> list[tuple]:
    """``(metric, unit, sampled, count)`` of the pairs within ``threshold`` (both values known): each is ``ok``."""
    return conn.execute(
        f"SELECT p.metric, p.unit, {_SAMPLED}, count(*) FROM compare_pairs p JOIN compare_cells k ON k.pair = p.pair "
        f"WHERE {_QUIET} GROUP BY 1, 2, 3", {"threshold": threshold}).fetchall()


def rows(conn: Any, threshold: float, every: bool, chunk: int = 20_000):
    """Yield ``(cell_key, metric, params, unit, new value, flag, base value, base run, new cell, base cell,
    sampled)`` for each pair beyond ``threshold`` or with a value missing (``every``: for every pair), in
    ``cell_key`` order, then the measurements' order; ``sampled``: both cells hold a sample set at ``params``."""
    cur = conn.execute(
        f"SELECT k.cell_key, p.metric, p.params, p.unit, n.value, n.flag, b.value, k.base_run, k.new_cell, "
        f"k.base_cell, {_SAMPLED} FROM compare_pairs p JOIN compare_cells k ON k.pair = p.pair "
        "JOIN measurements n ON n.id = p.new_m JOIN measurements b ON b.id = p.base_m "
        f"WHERE :every OR NOT {_QUIET} ORDER BY p.rowid", {"threshold": threshold, "every": int(every)})
    while batch := cur.fetchmany(chunk):
        yield from batch


def sample_stats(conn: Any, cells: set) -> dict:
    """``{(cell id, params): (cv, per_process, ci_rel, ci10_rel, cpu_cv, cpu_ci_rel)}`` of the sample sets of
    ``cells``.

    The statistics computed from a cell's raw samples (p90, mean, throughput...) share the sample set of the
    measurement that holds the samples (``p50_ms``) at the same parameters: its coefficient of variation, its
    per-process values (JSON), the relative half-widths of its median's and 10th percentile's 95% intervals,
    and the coefficient of variation and median's half-width of its CPU-time samples. Each is the largest of
    the set's measurements (per-process values: the first), ``None`` where none says."""
    out: dict = {}
    for cell, params, *values in conn.execute(
            f"SELECT m.cell_id, m.params, {_SAMPLE_STATS} FROM measurements m WHERE m.sample_set_id IS NOT NULL "
            "AND m.cell_id IN (SELECT value FROM json_each(?)) ORDER BY m.cell_id, m.id", [json.dumps(sorted(cells))]):
        seen = out.get((cell, params))
        out[(cell, params)] = tuple(values) if seen is None else tuple(
            (a if a is not None else b) if i == 1 else _max(a, b) for i, (a, b) in enumerate(zip(seen, values)))
    return out


def _max(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def identities(conn: Any, cells: set) -> dict:
    """``{cell id: (model, model_params, dataset, dataset_params, method, method_params, seed, backend,
    backend_params)}`` of ``cells``."""
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT id, model, model_params, dataset, dataset_params, method, method_params, seed, backend, "
        "backend_params FROM cells WHERE id IN (SELECT value FROM json_each(?))", [json.dumps(sorted(cells))])}


def history(conn: Any, new: dict, keys: set) -> dict:
    """``{(cell_key, metric, params): [values]}`` of ``keys`` in the earlier runs on NEW's machine where the
    cell succeeded (NEW excluded, BASE among them), oldest first, missing values left out."""
    if not keys:
        return {}
    out: dict = {}
    for key, metric, params, value in conn.execute(
            "SELECT c.cell_key, m.metric, m.params, m.value FROM cells c JOIN runs r ON r.id = c.run_id "
            "JOIN measurements m ON m.cell_id = c.id WHERE c.status = 'ok' AND r.machine_hash = ? AND r.id != ? "
            "AND r.started_at <= ? AND c.cell_key IN (SELECT value FROM json_each(?)) "
            "AND m.metric IN (SELECT value FROM json_each(?)) ORDER BY r.started_at, r.id",
            [new["machine_hash"], new["id"], new["started_at"], json.dumps(sorted({k[0] for k in keys})),
             json.dumps(sorted({k[1] for k in keys}))]):
        if (key, metric, params) in keys and value is not None:
            out.setdefault((key, metric, params), []).append(value)
    return out
