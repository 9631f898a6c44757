"""The wide leaderboard as plain rows: fetched, widened, checked and ranked without pandas.

A :class:`Board` is an ordered list of column names and one dict per row (a missing value is ``None``).
The command line reads boards directly, so a leaderboard or a frontier answers without importing pandas
or sqlite-utils (their imports alone take longer than the query). :func:`harness.query.leaderboard.leaderboard`
and the other functions that take or give pandas DataFrames run this same code, converting at the edge
(:func:`to_frame`, :func:`as_board`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from harness.query.columns import (
    IDENTITY,
    Catalogue,
    checks_behind,
    column_name,
    exclusion,
    join_flags,
    label,
    metric_columns,
    metric_of,
    needed_checks,
    params_text,
)
from harness.query.refs import SHORT, QueryError

SUITE_ORDER = {"accuracy": 0, "latency": 1, "size": 2, "soundness": 3, "robustness": 4, "verification": 5}
#: One leaderboard row per artifact, backend and machine; size (backend-independent) rows per artifact.
ART_KEYS = ("model", "dataset", "method", "method_params", "seed", "machine")
ROW_KEYS = ("model", "dataset", "method", "method_params", "seed", "backend", "backend_params", "machine")


@dataclass
class Board:
    """Leaderboard rows: ``columns`` in order, and one dict per row holding (at least) those keys."""

    columns: list[str]
    rows: list[dict]
    #: Only on a board fetched for some metrics (:func:`widen` with a layout): every metric column with a value
    #: in the store's rows, in order (``known``), and each row's (``present``), fetched or not.
    known: list[str] | None = None
    present: list[frozenset] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def empty(self) -> bool:
        return not self.rows

    def values(self, column: str) -> list:
        return [r.get(column) for r in self.rows]


def plain(value: Any) -> Any:
    """A value as rows hold it: NaN and pandas' NA -> ``None``, numpy scalars -> Python numbers."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def as_board(data: Any) -> Board:
    """A :class:`Board` of a Board, a pandas DataFrame or a list of dicts (the columns of the first rows)."""
    if isinstance(data, Board):
        return data
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame
        columns = [str(c) for c in data.columns]
        rows = [{c: plain(v) for c, v in zip(columns, values)} for values in data.itertuples(index=False)]
        return Board(columns, rows)
    rows = list(data)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    return Board(columns, rows)


def to_frame(board: Board) -> Any:
    """The board as a pandas DataFrame: metric columns numeric (missing values NaN), ``rank`` an ``Int64``."""
    import pandas as pd

    frame = pd.DataFrame(board.rows, columns=board.columns)
    for c in metric_columns(board):
        if frame[c].dtype == object:
            frame[c] = pd.to_numeric(frame[c], errors="coerce")
    if "rank" in frame.columns:
        frame["rank"] = frame["rank"].astype("Int64")
    return frame


CELL_COLUMNS = ("model", "model_params", "dataset", "dataset_params", "method", "method_params", "seed", "backend",
                 "backend_params", "suite")


def fetch_latest(conn: Any, machine_hash: str | None, where: list[str], args: list,
                 metrics: Collection[str] | None = None) -> tuple[dict[int, Any], list, dict[int, str] | None]:
    """The latest cells of ``machine_hash`` (``None``: of every machine) matching ``where`` (conditions on the
    cell columns ``model``, ``dataset``, ``method``, ``backend``) as ``{cell id: (cell id, *CELL_COLUMNS,
    machine hash)}``, and their
    measurements ``(cell_id, metric, value, params, flag)`` in store order.

    "Latest" is the ``latest_cells`` view's rule (the newest successful cell per cell key and identity, by
    finish time, then id). For one machine it is computed here over that machine's runs only, which lets
    SQLite group the cells in the order of their index instead of sorting the whole store (a test checks
    that both give the same cells).

    With ``metrics``, only the measurements of those metrics and the flagged ones are read, and a layout
    ``{cell id: "metric US params is-null RS ..."}`` says what else each cell holds, in order: enough for
    :func:`widen` to place the columns and for :func:`add_unchecked` to find unchecked figures exactly as on
    the whole board, without turning every value into a Python object.
    """
    conn.execute("DROP TABLE IF EXISTS temp.board_cells")  # temporary tables are allowed on a read-only store
    cols = ", ".join(f"c.{c}" for c in CELL_COLUMNS)
    cond = "".join(f" AND {w}" for w in where)
    if machine_hash is None:
        conn.execute(f"CREATE TEMP TABLE board_cells AS SELECT c.id AS cell_id, {cols}, c.machine_hash "
                     f"FROM latest_cells c WHERE 1{cond}", args)
    else:
        conn.execute(
            f"CREATE TEMP TABLE board_cells AS SELECT c.id AS cell_id, {cols}, r.machine_hash FROM ("
            "  SELECT max(coalesce(c.finished_at, '') || printf('%020d', c.id)) AS newest FROM cells c"
            f"  WHERE c.status = 'ok' AND c.run_id IN (SELECT id FROM runs WHERE machine_hash = ?){cond}"
            "  GROUP BY c.cell_key, c.model, c.dataset, c.method, c.backend"
            ") l JOIN cells c ON c.id = CAST(substr(l.newest, -20) AS INTEGER) JOIN runs r ON r.id = c.run_id",
            [machine_hash, *args])
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: 100,000 rows convert faster
    cells = {r[0]: r for r in cursor.execute("SELECT * FROM temp.board_cells").fetchall()}
    # IN, not JOIN: SQLite then reads the measurements through their cell_id index, already in order
    among = "m.cell_id IN (SELECT cell_id FROM temp.board_cells)"
    layout = None
    if metrics is None:
        measurements = cursor.execute("SELECT m.cell_id, m.metric, m.value, m.params, m.flag FROM measurements m "
                                      f"WHERE {among} ORDER BY m.cell_id, m.id").fetchall()
    else:
        names = sorted(set(metrics))
        chosen = f"m.metric IN ({', '.join('?' * len(names))})"
        measurements = cursor.execute(  # other metrics' flagged measurements: for their flags, not their values
            f"SELECT m.cell_id, m.metric, CASE WHEN {chosen} THEN m.value END, m.params, m.flag FROM measurements m "
            f"WHERE {among} AND ({chosen} OR m.flag IS NOT NULL) ORDER BY m.cell_id, m.id", names * 2).fetchall()
        layout = dict(cursor.execute(
            "SELECT m.cell_id, group_concat(m.metric || char(31) || m.params || (m.value IS NULL), char(30)) "
            f"FROM measurements m WHERE {among} GROUP BY m.cell_id").fetchall())
    conn.execute("DROP TABLE temp.board_cells")
    return cells, measurements, layout


def _not_harness(what: str, exc: Exception) -> QueryError:
    return QueryError(f"{what} are not the JSON harness writes ({type(exc).__name__}: {exc}); the store was written "
                      "or changed by something other than harness")


def _sorted(keys: Any) -> list:
    """Row keys in order, ``None`` after every value (a seed or backend may be missing)."""
    try:
        return sorted(keys)
    except TypeError:  # a None met a value
        return sorted(keys, key=_none_last)


def _none_last(key: tuple) -> tuple:
    return tuple((v is None, v if v is not None else 0) for v in key)


def widen(cells: dict[int, Any], measurements: list[tuple], layout: dict[int, str] | None = None) -> Board:
    """Latest cells and their measurements -> one row per (artifact, backend, machine), with ``flags``.

    A metric measured with parameters becomes its own column (``p50_ms@b32``); the first value of a cell
    is kept. Backend-independent (size) measurements go on every backend row of their artifact. Rows come
    in the order of their identity; columns by suite, then as first measured. With a ``layout``
    (:func:`fetch_latest`), ``measurements`` are a part of the cells' and the board gets ``known`` and
    ``present`` for what was not read.
    """
    memo: dict[tuple, Any] = {}

    def once(fn: Any, *key: Any) -> Any:  # few distinct values repeat over many rows: convert each once
        k = (fn, *key)
        if k not in memo:
            memo[k] = fn(*key)
        return memo[k]

    def text(p: str) -> str:
        return params_text(json.loads(p))

    # Each cell's place: per backend or shared, and its row key (few distinct labels repeat over many cells).
    labels: dict[tuple, str] = {}
    texts: dict[str, str] = {}
    place: dict[int, tuple] = {}
    suite_of: dict[int, int] = {}
    for cid, (_, model, mparams, dataset, dparams, method, params, seed, backend, bparams, suite, machine) in \
            cells.items():
        try:
            m = labels.get((model, mparams)) or labels.setdefault((model, mparams), label(model, mparams))
            d = labels.get((dataset, dparams)) or labels.setdefault((dataset, dparams), label(dataset, dparams))
            p = texts[params] if params in texts else texts.setdefault(params, text(params))
            bp = texts[bparams] if bparams in texts else texts.setdefault(bparams, text(bparams))
        except (ValueError, TypeError, AttributeError) as exc:
            raise _not_harness(f"cell {cid}: its parameters", exc) from None
        if backend is not None:
            place[cid] = (0, (m, d, method, p, seed, backend, bp, machine[:SHORT]))
        else:
            place[cid] = (1, (m, d, method, p, seed, machine[:SHORT]))
        suite_of[cid] = SUITE_ORDER.get(suite, 9)
    names: dict[tuple, str] = {}
    order: dict[str, tuple] = {}
    held: dict[int, frozenset] = {}  # with a layout: each cell's columns with a value
    if layout is not None:
        parsed: dict[str, frozenset] = {}
        for cid in sorted(layout):  # cell by cell, as the measurements come
            text = layout[cid]
            if text not in parsed:  # a layout seen before has no new column to place
                # "metric US params null?" (params is JSON, so its last character is "}"), RS between
                try:
                    parts = [(p.split("\x1f", 1)) for p in text.split("\x1e")] if text else []
                    cols = [(once(column_name, m, rest[:-1]), rest[-1] == "0") for m, rest in parts]
                except (ValueError, TypeError, AttributeError) as exc:
                    raise _not_harness(f"cell {cid}: its measurements' parameters", exc) from None
                for col, _ in cols:
                    if col not in order:
                        order[col] = (suite_of[cid], len(order))
                parsed[text] = frozenset(col for col, has in cols if has)
            held[cid] = parsed[text]
    tables: tuple[dict, dict] = ({}, {})  # per backend, shared
    present: tuple[set, set] = (set(), set())
    entry, last = None, None
    for cid, metric, value, mparams, flag in measurements:
        col = names.get((metric, mparams))
        if col is None:
            try:
                col = names[(metric, mparams)] = column_name(metric, mparams)
            except (ValueError, TypeError, AttributeError) as exc:
                raise _not_harness(f"cell {cid}: measurement {metric!r}'s parameters", exc) from None
        if col not in order:
            order[col] = (suite_of[cid], len(order))
        if cid != last:  # measurements come cell by cell
            last = cid
            side, key = place[cid]
            entry = tables[side].get(key)
            if entry is None:
                entry = tables[side][key] = ({}, [], set())
        if value is not None and col not in entry[0]:
            if value.__class__ is not float and value.__class__ is not int:  # SQLite keeps any type in any column
                raise QueryError(f"cell {cid}: measurement {metric!r} holds {value!r}, which is no number; the "
                                 "store was written or changed by something other than harness")
            entry[0][col] = value
            present[side].add(col)
        if flag is not None:
            entry[1].append(flag)
        entry[2].add(cid)
    for cid in held:  # a cell none of whose measurements were read still has its row
        side, key = place[cid]
        tables[side].setdefault(key, ({}, [], set()))
        tables[side][key][2].add(cid)
    per_backend, shared = tables
    rows, holds = [], []
    if per_backend:
        for key in _sorted(per_backend):
            vals, flags, cids = per_backend[key]
            row = dict(zip(ROW_KEYS, key), **vals)
            row["flags"] = join_flags(flags) if flags else None
            art = tuple(row[k] for k in ART_KEYS)
            if art in shared:
                svals, sflags, scids = shared[art]
                for col, v in svals.items():
                    if row.get(col) is None:
                        row[col] = v
                if sflags:
                    row["flags"] = join_flags([row["flags"], *sflags])
                cids = cids | scids
            rows.append(row)
            holds.append(cids)
        columns_present = present[0] | (present[1] if shared else set())
    else:
        for key in _sorted(shared):
            vals, flags, cids = shared[key]
            row = dict(zip(ART_KEYS, key), backend=None, backend_params="", **vals)
            row["flags"] = join_flags(flags) if flags else None
            rows.append(row)
            holds.append(cids)
        columns_present = present[1]
    metric_cols = sorted(columns_present, key=lambda c: order.get(c, (9, 0)))
    columns = IDENTITY + metric_cols + ["flags"]
    blank = dict.fromkeys(columns)  # every row holds every column; a row's keys are all columns
    out = Board(columns, [{**blank, **r} for r in rows])
    if layout is not None:
        out.present = [held[next(iter(cids))] if len(cids) == 1 else frozenset().union(*(held[c] for c in cids))
                       for cids in holds]
        everywhere = set().union(*held.values())  # as the whole board's columns: every cell's, kept or not
        out.known = sorted(everywhere, key=lambda c: order.get(c, (9, 0)))
    return out


def add_unchecked(board: Board, catalogue: Catalogue) -> None:
    """Add ``unchecked: CHECK has no result (needed by COLUMN)`` to the ``flags`` of each row that has a
    figure whose check (:func:`harness.query.columns.needed_checks`) has no result in that row: a result
    stored before the check existed, or by a writer that skipped it. Rows are never ranked on an unchecked
    figure. COLUMN is the first column of the board that needs the check and lacks it somewhere."""
    known = board.known if board.known is not None else metric_columns(board)
    cols = [c for c in known if not metric_of(c).startswith("check_")]
    needs = [(i, col, needed_checks(col, catalogue)) for i, col in enumerate(cols)]
    first: dict[str, int] = {}  # check -> index of the first column that needs it and lacks it somewhere
    hits: list[set] = []
    memo: dict[frozenset, set] = {}  # rows with the same figures present miss the same checks
    for n, row in enumerate(board.rows):
        present = (board.present[n] if board.present is not None else
                   frozenset(k for k, v in row.items() if v is not None))
        hit = memo.get(present)
        if hit is None:
            hit = memo[present] = set()
            for i, col, checks in needs:
                if col not in present:
                    continue
                for check in checks:
                    if check not in present:
                        hit.add(check)
                        if check not in first or i < first[check]:
                            first[check] = i
        hits.append(hit)
    if not first:
        return
    in_order = sorted(first, key=lambda c: (first[c], needs[first[c]][2].index(c)))
    for row, hit in zip(board.rows, hits):
        if not hit:
            continue
        text = row.get("flags") or ""
        added = False
        for check in in_order:
            if check not in hit:
                continue
            name = check.removeprefix("check_")
            if f"unchecked: {name.split('@')[0]}" in text:  # the writer (or a note before) said why
                continue
            note = f"unchecked: {name} has no result (needed by {cols[first[check]]})"
            text = f"{text}; {note}" if text else note
            added = True
        if added:
            row["flags"] = join_flags([text])


def rank(board: Board, column: str, *, higher: bool, catalogue: Catalogue) -> Board:
    """Best first by ``column``, numbered in a ``rank`` column within each machine (see
    :func:`harness.query.leaderboard.rank`); flagged rows and rows without a value are not ranked and
    come after the ranked rows of their machine."""
    out_of = exclusion([column], catalogue)
    sign = -1.0 if higher else 1.0
    decorated = []
    for i, row in enumerate(board.rows):
        v = row.get(column)
        rankable = v is not None and not out_of(row.get("flags"))
        decorated.append(((row.get("machine") or "", not rankable, v is None, sign * v if v is not None else 0.0, i),
                          rankable, row))
    decorated.sort(key=lambda d: d[0])
    behind = checks_behind(column, catalogue) or None
    rows, best = [], {}
    seen: dict[str, int] = {}
    for _, rankable, row in decorated:
        row = dict(row)
        machine = row.get("machine") or ""
        r = None
        if rankable:
            n = seen.get(machine, 0) + 1
            seen[machine] = n
            value = row[column]
            if machine in best and best[machine][0] == value:
                r = best[machine][1]
            else:
                r = n
                best[machine] = (value, n)
        row["rank"], row["checks"] = r, behind if r is not None else None
        rows.append(row)
    columns = ["rank", "checks"] + [c for c in board.columns if c not in ("rank", "checks")]
    return Board(columns, rows)
