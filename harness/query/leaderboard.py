"""Reading the leaderboard: long results, the wide latest-per-cell view, output formats.

Everything here opens the database read-only.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from harness.query import density
from harness.query.columns import (
    IDENTITY,
    Catalogue,
    batch_of,
    checks_behind,
    column_name,
    convert_distinct,
    excluded,
    join_flags,
    label,
    metric_columns,
    params_text,
    resolve_column,
    unchecked_flags,
)
from harness.query.pareto import Frontier, frontier, parse_objectives
from harness.query.refs import SHORT, QueryError, resolve_machine
from harness.store.db import open_readonly

SUITE_ORDER = {"accuracy": 0, "latency": 1, "size": 2, "soundness": 3, "robustness": 4, "verification": 5}


def results(db: str | Path, run_id: int | None = None) -> list[dict]:
    """One record per measurement, with its cell's identity; the latest run when ``run_id`` is None.

    Each kind of parameter keeps its own field, so that no key of one hides a key of another (a method's
    ``batch_size`` beside the latency suite's): ``model_params``, ``dataset_params``, ``method_params`` and
    ``backend_params`` (the cell's), ``seed``, and ``measure_params`` (the measurement's own, the store's
    ``measurements.params``: ``{"batch_size": 1}``). ``flag`` is why the value failed a gate, or ``None``.
    """
    conn = open_readonly(db)
    try:
        if run_id is None:
            row = conn.execute("SELECT max(id) FROM runs").fetchone()
            run_id = row[0]
            if run_id is None:
                return []
        rows = conn.execute("SELECT * FROM results WHERE run_id = ? ORDER BY cell_id, measurement_id",
                            [run_id]).fetchall()
    finally:
        conn.close()
    out = []
    for r in rows:
        out.append({
            "run_id": r["run_id"], "model": r["model"], "model_params": json.loads(r["model_params"] or "{}"),
            "dataset": r["dataset"], "dataset_params": json.loads(r["dataset_params"] or "{}"),
            "method": r["method"], "method_params": json.loads(r["method_params"] or "{}"), "seed": r["seed"],
            "backend": r["backend"], "backend_params": json.loads(r["backend_params"] or "{}"),
            "suite": r["suite"], "metric": r["metric"], "measure_params": json.loads(r["params"] or "{}"),
            "value": r["value"], "unit": r["unit"], "flag": r["flag"],
        })
    return out


def runs(db: str | Path) -> list[dict]:
    """Runs with their tag and cell counts by status."""
    conn = open_readonly(db)
    try:
        rows = conn.execute("""
            SELECT r.id, r.suite_name, r.tag, r.status, r.started_at, r.finished_at, r.git_revision, r.machine_hash,
                   sum(c.status = 'ok') AS ok, sum(c.status = 'skipped') AS skipped,
                   sum(c.status = 'failed') AS failed
            FROM runs r LEFT JOIN cells c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id""").fetchall()
    finally:
        conn.close()
    return [dict(r) for r in rows]


def read_catalogue(db: str | Path) -> Catalogue:
    """The metric catalogue of a leaderboard: each metric's suite and direction."""
    conn = open_readonly(db)
    try:
        return Catalogue.read(conn)
    finally:
        conn.close()


def metric_directions(db: str | Path) -> dict[str, bool | None]:
    """``{metric: higher_is_better}`` from the metric catalogue."""
    return read_catalogue(db).higher


def leaderboard(db: str | Path, *, model: str | None = None, dataset: str | None = None,
                backend: str | None = None, method: str | None = None, sort: str | None = None,
                machine: str | None = None) -> Any:
    """The wide view: one row per (model, dataset, method + params, seed, backend, machine), latest result per cell.

    Backend-independent metrics (size) appear on every backend's row of the same artifact.
    Metrics measured at several batch sizes become ``metric@bN`` columns. ``machine`` selects
    the machine (a prefix of its hash, or ``all``); by default the machine of the latest run, so
    latency measured on different machines is never mixed. Verification cells show their verdicts judged
    across every verifier of the same benchmark in the store (:mod:`harness.query.adjudication`). The
    ``flags`` column holds why a row failed a gate (any of its measurements flagged); such rows are never ranked.

    ``sort`` names a column, or a metric whose smallest-batch column (the single-stream one) is
    then used; the direction comes from the metric catalogue (best first). Sorting adds a ``rank``
    column, counted within each machine, that is empty for flagged rows and rows without a value;
    those come after the ranked rows. Returns a pandas DataFrame.
    """
    import pandas as pd

    conn = open_readonly(db)
    try:
        machine_hash = resolve_machine(conn, machine)
        where, args = [], []
        if machine_hash is not None:
            where.append("machine_hash = ?")
            args.append(machine_hash)
        for key, value in (("model", model), ("dataset", dataset), ("method", method)):
            if value is not None and "(" not in value:  # a bare name: filter in SQL, inside the view
                # dense rows stay until the density columns are computed from them (filtered below)
                where.append(f"{key} = ?" if key != "method" else "(method = ? OR method = 'dense')")
                args.append(value)
        if backend is not None and "(" not in backend:
            where.append("(backend = ? OR backend IS NULL)")  # size rows are shared by every backend
            args.append(backend)
        cells, measurements = _latest(conn, where, args)
        # Verification verdicts are judged across every verifier of their benchmark, not cell by cell. Only
        # the verification suite records ``unsound``: without it the judge (and its imports) is not needed.
        if not measurements.empty and (measurements["metric"] == "unsound").any():
            from harness.query import adjudication

            measurements = adjudication.apply(conn, measurements)
        catalogue = Catalogue.read(conn)
    finally:
        conn.close()
    if measurements.empty:
        return pd.DataFrame(columns=IDENTITY + ["flags"])
    wide = _widen(cells, measurements)
    wide["flags"] = unchecked_flags(wide, catalogue)
    # Capacity density needs the whole dense family of each architecture: before any filter on a row.
    wide = density.add_columns(wide)
    for key, value in (("model", model), ("dataset", dataset), ("backend", backend), ("method", method)):
        if value is not None:
            wide = wide[wide[key] == value]
    if sort:
        col = resolve_column(sort, metric_columns(wide))
        wide = rank(wide, col, higher=bool(catalogue.direction(col)), catalogue=catalogue)
    return wide.reset_index(drop=True)


def _latest(conn: Any, where: list[str], args: list) -> tuple[Any, Any]:
    """The latest cells matching ``where`` and their measurements, as two frames joined by ``cell_id``."""
    import pandas as pd

    # A temporary table (allowed on a read-only connection) computes the view once, and keeps the
    # repeated identity strings out of the long rows.
    conn.execute("DROP TABLE IF EXISTS temp.board_cells")
    conn.execute(
        "CREATE TEMP TABLE board_cells AS SELECT id AS cell_id, model, model_params, dataset, dataset_params, "
        "method, method_params, seed, backend, backend_params, machine_hash, suite FROM latest_cells"
        + (" WHERE " + " AND ".join(where) if where else ""), args)
    cells = pd.read_sql_query("SELECT * FROM temp.board_cells", conn)
    measurements = pd.read_sql_query(
        "SELECT m.cell_id, m.metric, m.value, m.params AS mparams, m.flag FROM temp.board_cells b "
        "JOIN measurements m ON m.cell_id = b.cell_id ORDER BY m.cell_id, m.id", conn)
    conn.execute("DROP TABLE temp.board_cells")
    return cells, measurements


def _widen(cells: Any, measurements: Any) -> Any:
    """Latest cells and their measurements -> one row per (artifact, backend, machine), with ``flags``."""
    cells = cells.copy()
    # Few distinct values repeat over many rows: convert each distinct one once.
    cells["method_params"] = convert_distinct(cells, ["method_params"], lambda p: params_text(json.loads(p)))
    for kind in ("model", "dataset"):
        cells[kind] = convert_distinct(cells, [kind, f"{kind}_params"], label)
    cells["backend_params"] = convert_distinct(cells, ["backend_params"], lambda p: params_text(json.loads(p)))
    cells["machine"] = cells.pop("machine_hash").str[:SHORT]
    frame = measurements.merge(cells.drop(columns=["model_params", "dataset_params"]), on="cell_id")
    frame["column"] = convert_distinct(frame, ["metric", "mparams"], column_name)
    firsts = frame[["column", "suite"]].drop_duplicates("column")
    order = {c: (SUITE_ORDER.get(s, 9), i) for i, (c, s) in enumerate(zip(firsts["column"], firsts["suite"]))}

    art_keys = ["model", "dataset", "method", "method_params", "seed", "machine"]
    row_keys = art_keys[:-1] + ["backend", "backend_params", "machine"]
    per_backend = frame[frame["backend"].notna()]
    shared = frame[frame["backend"].isna()]
    wide = _pivot(per_backend, row_keys)
    if not shared.empty:
        swide = _pivot(shared, art_keys)
        if wide.empty:
            wide = swide.assign(backend=None, backend_params="")
        else:
            wide = wide.merge(swide, on=art_keys, how="left", suffixes=("", "_shared"))
            wide["flags"] = [_join_flags(a, b) for a, b in zip(wide["flags"], wide.pop("flags_shared"))]
            for col in [c for c in wide.columns if c.endswith("_shared")]:  # check_claims: on both sides
                wide[col[:-len("_shared")]] = wide[col[:-len("_shared")]].combine_first(wide.pop(col))
    wide.columns.name = None
    metric_cols = sorted([c for c in wide.columns if c not in IDENTITY and c != "flags"],
                         key=lambda c: order.get(c, (9, 0)))
    return wide[IDENTITY + metric_cols + ["flags"]]


def _pivot(frame: Any, keys: list[str]) -> Any:
    import pandas as pd

    if frame.empty:
        return pd.DataFrame(columns=keys + ["flags"])
    wide = frame.pivot_table(index=keys, columns="column", values="value", aggfunc="first").reset_index()
    flagged = frame[frame["flag"].notna()]
    flags = flagged.groupby(keys, dropna=False)["flag"].agg(join_flags).rename("flags")
    wide = wide.merge(flags.reset_index(), on=keys, how="left") if len(flags) else wide.assign(flags=None)
    wide["flags"] = wide["flags"].where(wide["flags"].notna(), None)
    return wide


def _join_flags(a: Any, b: Any) -> str | None:
    return join_flags((a, b)) if isinstance(a, str) or isinstance(b, str) else None


def rank(frame: Any, column: str, *, higher: bool, catalogue: Catalogue) -> Any:
    """Sort best first by ``column`` and number the rows in a ``rank`` column, within each machine.

    Equal values share a rank, and the next value's rank counts the rows before it (competition ranking:
    1, 2, 2, 4). Flagged rows (see :func:`harness.query.columns.excluded`, which reads ``catalogue``) and
    rows without a value are never ranked: their rank is empty and they come after the ranked rows of
    their machine.
    A ``checks`` column names the checks that stand behind each ranked figure
    (:func:`harness.query.columns.checks_behind`).
    """
    import pandas as pd

    frame = frame.copy()
    flagged = excluded(frame["flags"], [column], catalogue)
    rankable = ~flagged & frame[column].notna()
    frame["_unranked"] = (~rankable).astype(int)
    frame = frame.sort_values(["machine", "_unranked", column], ascending=[True, True, not higher],
                              na_position="last", kind="stable")
    # Competition ranking ("1, 2, 2, 4"): equal values share the best rank of their group.
    ranked = frame[rankable.reindex(frame.index)]
    ranks = ranked.groupby("machine")[column].rank(method="min", ascending=not higher)
    frame.insert(0, "rank", ranks.reindex(frame.index).astype("Int64"))
    # Which checks stand behind each ranked figure (a ranked row has them all run and passed).
    behind = checks_behind(column, catalogue)
    frame.insert(1, "checks", [behind if r is not pd.NA and behind else None for r in frame["rank"]])
    return frame.drop(columns="_unranked")


def frontier_of(db: str | Path, frame: Any, objectives: str, by: str = "backend") -> Frontier:
    """The Pareto frontier (:class:`harness.query.pareto.Frontier`) of a leaderboard ``frame`` over
    ``objectives`` (``"top1:max,p50_ms:min"``), one per value of the ``by`` columns (``"none"``: one
    per machine)."""
    catalogue = read_catalogue(db)
    groups = [] if by.strip() in ("none", "") else [g.strip() for g in by.split(",") if g.strip()]
    return frontier(frame, parse_objectives(objectives, metric_columns(frame), catalogue.higher), groups,
                    catalogue=catalogue)


#: Metrics shown by the table view unless ``--columns`` says otherwise (one per suite question).
HEADLINE = ("top1", "top1_delta", "p50_ms@b1", "p90_ms@b1", "throughput_sps", "weight_sparsity", "gzip_bytes",
            "theoretical_speedup", "certified_accuracy", "score", "unsound", "capacity_density")


def select_columns(frame: Any, columns: str | None) -> Any:
    """Keep the identity columns and ``columns`` (comma-separated names; ``all``; ``None``: the headline).

    A bare metric name that was measured at several batch sizes keeps every variant, except
    ``throughput_sps`` in the headline, which keeps the largest batch (the offline scenario).
    """
    if columns == "all":
        return frame
    metric_cols = metric_columns(frame)  # ``rank`` and ``flags`` are never selected away
    if columns is None:
        wanted: list[str] = []
        for name in HEADLINE:
            variants = [c for c in metric_cols if c == name or c.split("@", 1)[0] == name]
            if name == "throughput_sps" and variants:
                variants = [max(variants, key=batch_of)]
            wanted += [c for c in variants if c not in wanted]
    else:
        wanted = []
        for name in (c.strip() for c in columns.split(",") if c.strip()):
            variants = [c for c in metric_cols if c == name or c.split("@", 1)[0] == name]
            if not variants:
                raise QueryError(f"no column {name!r} in the leaderboard (columns: {', '.join(metric_cols)})",
                                 key=name)
            wanted += [c for c in variants if c not in wanted]
    keep = [c for c in IDENTITY if c in frame.columns]
    for quiet in ("backend_params", "machine"):  # one value everywhere says nothing in a table
        if quiet in keep and frame[quiet].nunique(dropna=False) <= 1:
            keep.remove(quiet)
    head = [c for c in ("rank", "checks") if c in frame.columns]
    tail = ["flags"] if "flags" in frame.columns and frame["flags"].notna().any() else []
    return frame[head + keep + wanted + tail]


def render(rows: Any, fmt: str) -> str:
    """Render a DataFrame or a list of dicts as ``table``, ``json``, ``csv`` or ``markdown``."""
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if fmt == "json":
        return frame.to_json(orient="records", indent=1, force_ascii=False) if not frame.empty else "[]"
    if fmt == "csv":
        out = frame.copy()
        for c in out.columns:
            if out[c].map(lambda v: isinstance(v, (dict, list))).any():
                out[c] = out[c].map(lambda v: json.dumps(v, sort_keys=True))
        return out.to_csv(index=False)
    if fmt == "markdown":
        return _markdown(frame)
    if fmt == "table":
        return _table(frame)
    raise ValueError(f"unknown format {fmt!r}")


def _fmt(v: Any) -> str:
    """One value as the text formats (table, markdown) show it: missing values empty (never ``nan`` or
    ``<NA>``), whole numbers whole (``76680``, not ``7.668e+04``), others to 4 significant digits but
    never in exponent form from 10,000 on."""
    import numpy as np

    if v is None or (isinstance(v, float) and v != v) or type(v).__name__ == "NAType":
        return ""
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
    if isinstance(v, dict):
        return params_text(v)
    return str(v)


def _markdown(frame: Any) -> str:
    """A GitHub Markdown table of ``frame``, every value through :func:`_fmt`; numeric columns aligned right."""
    from pandas.api.types import is_numeric_dtype
    from tabulate import tabulate

    cells = [[_fmt(v).replace("|", "\\|") for v in row] for row in frame.itertuples(index=False)]
    align = ["right" if is_numeric_dtype(frame[c]) else "left" for c in frame.columns]
    return tabulate(cells, headers=[str(c) for c in frame.columns], tablefmt="pipe", disable_numparse=True,
                    colalign=align or None)


def _table(frame: Any) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False)
    for c in frame.columns:
        table.add_column(str(c), no_wrap=c in IDENTITY, overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(_fmt(v)) for v in row))  # Text: a "[...]" in a value is no rich markup
    console = Console(width=1000, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()
