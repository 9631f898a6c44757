"""Reading the leaderboard: long results, the wide latest-per-cell view, output formats.

Everything here opens the database read-only.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

from harness.query import density
from harness.query.board import Board, add_unchecked, as_board, fetch_latest, plain, to_frame, widen
from harness.query.board import rank as rank_board
from harness.query.columns import (
    IDENTITY,
    Catalogue,
    batch_of,
    metric_columns,
    metric_of,
    params_text,
    resolve_column,
)
from harness.query.pareto import Frontier, frontier, parse_objectives
from harness.query.refs import QueryError, resolve_machine
from harness.store.check import open_readonly


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
    those come after the ranked rows. Returns a pandas DataFrame (:func:`board` gives the same rows
    without pandas).
    """
    return to_frame(board(db, model=model, dataset=dataset, backend=backend, method=method, sort=sort,
                          machine=machine))


def board(db: str | Path, *, model: str | None = None, dataset: str | None = None, backend: str | None = None,
          method: str | None = None, sort: str | None = None, machine: str | None = None,
          metrics: Collection[str] | None = None) -> Board:
    """:func:`leaderboard` as a :class:`harness.query.board.Board` (plain rows; what the command line reads).

    ``metrics`` (names, as :func:`metrics_shown` gives them): only these metrics' columns are read, the rows,
    flags, unchecked notes and ranks staying those of the whole board; ``None``: every column."""
    conn = open_readonly(db)
    try:
        machine_hash = resolve_machine(conn, machine)
        where, args = [], []
        for key, value in (("model", model), ("dataset", dataset), ("method", method)):
            if value is not None and "(" not in value:  # a bare name: filter in SQL, inside the view
                # dense rows stay until the density columns are computed from them (filtered below)
                where.append(f"c.{key} = ?" if key != "method" else "(c.method = ? OR c.method = 'dense')")
                args.append(value)
        if backend is not None and "(" not in backend:
            where.append("(c.backend = ? OR c.backend IS NULL)")  # size rows are shared by every backend
            args.append(backend)
        cells, measurements, layout = fetch_latest(conn, machine_hash, where, args, metrics)
        # Verification verdicts are judged across every verifier of their benchmark, not cell by cell. Without
        # a verification cell in view the judge (and its imports) is not needed.
        if any(c[10] == "verification" for c in cells.values()):  # (cell id, *CELL_COLUMNS, machine)
            from harness.query import adjudication

            measurements = adjudication.apply(conn, measurements)
        catalogue = Catalogue.read(conn)
    finally:
        conn.close()
    if not measurements:
        return Board(IDENTITY + ["flags"], [])
    try:
        wide = widen(cells, measurements, layout)
    except QueryError as exc:
        raise QueryError(f"{db}: {exc}") from None
    add_unchecked(wide, catalogue)
    # Capacity density needs the whole dense family of each architecture: before any filter on a row.
    wide = density.add_columns(wide)
    for key, value in (("model", model), ("dataset", dataset), ("backend", backend), ("method", method)):
        if value is not None:
            wide = Board(wide.columns, [r for r in wide.rows if r.get(key) == value])
    if sort:
        col = resolve_column(sort, metric_columns(wide))
        wide = rank_board(wide, col, higher=bool(catalogue.direction(col)), catalogue=catalogue)
    return wide


def metrics_shown(columns: str | None, *, sort: str | None = None, pareto: str | None = None) -> set[str] | None:
    """The metrics a leaderboard shown with ``columns`` (:func:`select_columns`' argument), sorted by ``sort``
    and cut to the frontier of ``pareto`` needs, for :func:`board`'s ``metrics``; ``None`` for all of them."""
    if columns == "all":
        return None
    names = set(HEADLINE) if columns is None else {c.strip() for c in columns.split(",") if c.strip()}
    names |= {p.split(":", 1)[0].strip() for p in (pareto or "").split(",") if p.strip()}
    if sort:
        names.add(sort)
    names = {metric_of(n) for n in names}
    if names & set(density.COLUMNS):  # the density columns are computed from these
        names |= {"top1", "perplexity", "nonzero_params"}
    return names


def rank(frame: Any, column: str, *, higher: bool, catalogue: Catalogue) -> Any:
    """Sort best first by ``column`` and number the rows in a ``rank`` column, within each machine.

    Equal values share a rank, and the next value's rank counts the rows before it (competition ranking:
    1, 2, 2, 4). Flagged rows (see :func:`harness.query.columns.exclusion`, which reads ``catalogue``) and
    rows without a value are never ranked: their rank is empty and they come after the ranked rows of
    their machine.
    A ``checks`` column names the checks that stand behind each ranked figure
    (:func:`harness.query.columns.checks_behind`). ``frame``: a DataFrame (one is returned) or a Board.
    """
    ranked = rank_board(as_board(frame), column, higher=higher, catalogue=catalogue)
    return ranked if isinstance(frame, Board) else to_frame(ranked)


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
    """Keep the identity columns and ``columns`` (comma-separated names; ``all``; ``None``: the headline) of a
    leaderboard (a DataFrame or a :class:`harness.query.board.Board`; the same kind comes back).

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
    b = as_board(frame)
    keep = [c for c in IDENTITY if c in b.columns]
    for quiet in ("backend_params", "machine"):  # one value everywhere says nothing in a table
        if quiet in keep and len(set(b.values(quiet))) <= 1:
            keep.remove(quiet)
    head = [c for c in ("rank", "checks") if c in b.columns]
    tail = ["flags"] if "flags" in b.columns and any(v is not None for v in b.values("flags")) else []
    chosen = head + keep + wanted + tail
    return Board(chosen, b.rows) if isinstance(frame, Board) else frame[chosen]


def render(rows: Any, fmt: str) -> str:
    """Render a :class:`harness.query.board.Board`, a DataFrame or a list of dicts as ``table``, ``json``, ``csv``
    or ``markdown`` (without pandas for a Board or a list)."""
    b = as_board(rows)
    if fmt == "json":  # valid JSON: an infinite figure (SQLite keeps them) is null, as NaN is
        return json.dumps([{c: _finite(plain(r.get(c))) for c in b.columns} for r in b.rows], indent=1,
                          ensure_ascii=False, default=str) if b.rows else "[]"
    if fmt == "csv":
        import csv

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(b.columns)
        for r in b.rows:
            writer.writerow(["" if (v := plain(r.get(c))) is None else
                             json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for c in b.columns])
        return out.getvalue()
    if fmt == "markdown":
        return _markdown(b)
    if fmt == "table":
        return _table(b)
    raise ValueError(f"unknown format {fmt!r}")


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _fmt(v: Any) -> str:
    """One value as the text formats (table, markdown) show it: missing values empty (never ``nan`` or
    ``<NA>``), whole numbers whole (``76680``, not ``7.668e+04``), others to 4 significant digits but
    never in exponent form from 10,000 on."""
    v = plain(v)
    if v is None:
        return ""
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
    if isinstance(v, dict):
        return params_text(v)
    return str(v)


def _numeric(values: list) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) for v in present)


def _markdown(b: Board) -> str:
    """A GitHub Markdown table, every value through :func:`_fmt`; numeric columns aligned right."""
    from tabulate import tabulate

    cells = [[_fmt(r.get(c)).replace("|", "\\|") for c in b.columns] for r in b.rows]
    align = ["right" if _numeric([plain(v) for v in b.values(c)]) else "left" for c in b.columns]
    return tabulate(cells, headers=[str(c) for c in b.columns], tablefmt="pipe", disable_numparse=True,
                    colalign=align or None)


def _table(b: Board) -> str:
    """A boxed text table, every value through :func:`_fmt`, in tabulate's ``rounded_outline`` look. Drawn
    here: importing tabulate 0.10 (it reads its version through importlib.metadata) takes longer than a
    filtered leaderboard's query, and a box of fixed-width columns is a few lines."""
    heads = [str(c) for c in b.columns]
    cells = [[" ".join(_fmt(r.get(c)).splitlines()) for c in b.columns] for r in b.rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(heads)]

    def rule(left: str, mid: str, right: str) -> str:
        return left + mid.join("\u2500" * (w + 2) for w in widths) + right

    def line(values: list[str]) -> str:
        return "\u2502 " + " \u2502 ".join(v.ljust(w) for v, w in zip(values, widths)) + " \u2502"

    return "\n".join([rule("\u256d", "\u252c", "\u256e"), line(heads), rule("\u251c", "\u253c", "\u2524"),
                      *(line(row) for row in cells), rule("\u2570", "\u2534", "\u256f")])
