"""``harness report``: one self-contained HTML file, summary first, then plots (Pareto, capacity-density
curves, history), the full table and the runs.

Layout, top to bottom: a summary (entries, ranked, flagged by kind, machine, runs) with the ranked top
:data:`TOP_N` by accuracy; the Pareto plots and history small multiples (:mod:`harness.report.plots`,
plotly with plotly.js inlined once, so the file opens without a network); the whole leaderboard as a
sortable, filterable, paginated table drawn by a small script bundled in the page (no CDN); the latest
runs. Flags are badges (their kind; the full reason on hover); unranked rows have an empty rank. At
scale the table holds at most ``table_rows`` rows and the page says how to see all of them in
``harness serve``. The leaderboard and the plots use one machine (the latest run's by default), so
latency of different machines is never mixed.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from harness.query.refs import QueryError
from harness.report.plots import (
    axis_title,
    density_figures,
    figure_html,
    flagged,
    history,
    history_rows,
    missing,
    scatter,
    units,
    when,
)

ACCURACY = "top1"
LATENCY = "p50_ms"
SIZE = "gzip_bytes"
#: Rows of the summary's ranked top.
TOP_N = 10
#: Rows the full table holds at most; beyond, the page points to ``harness serve``.
TABLE_ROWS = 5000
#: Runs listed at the end (newest first).
RUNS_SHOWN = 30
#: Identity columns of the table (shown when they vary), then metrics, then flags.
_IDENTITY = ("model", "dataset", "method", "method_params", "seed", "backend", "backend_params", "machine")
_BADGE = {"quality gate": "amber", "soundness": "red", "unsound": "red", "unchecked": "grey",
          "latency only": "blue"}


def flag_parts(text: Any) -> list[tuple[str, str]]:
    """``"quality gate: top1 ...; unchecked: ..."`` -> ``[(kind, full text), ...]``, sorted by kind."""
    if not isinstance(text, str) or not text:
        return []
    parts = [p.strip() for p in text.split("; ") if p.strip()]
    return sorted((p.split(":", 1)[0].strip(), p) for p in parts)


def badges(text: Any) -> str:
    """The flags of a row as badges: the kind shown, the whole reason on hover."""
    return "".join(f'<span class="badge {_BADGE.get(kind, "grey")}" title="{html.escape(full)}">'
                   f"{html.escape(kind)}</span>" for kind, full in flag_parts(text))


def _number(value: Any, unit: str) -> str:
    """A value as the tables show it: bytes in KiB/MiB/GiB, fractions to 4 decimals, large numbers with
    thousands separators or a k/M/G suffix, never in exponent form; missing values empty."""
    if type(value) is not float and missing(value):
        return ""
    v = float(value)
    if v != v:
        return ""
    if unit == "bytes":
        for size, suffix in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
            if abs(v) >= size:
                return f"{v / size:.3g} {suffix}"
        return f"{v:.0f} B"
    if unit == "fraction":
        text = f"{v:.4f}"
        return text[1:] if text == "-0.0000" else text  # a tiny negative delta is no loss
    if abs(v) >= 1e7:  # 1.2G rather than 1.2e+09
        for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
            if abs(v) >= size:
                return f"{v / size:.4g}{suffix}"
    if abs(v) >= 1e4:  # 38,020 rather than 3.802e+04
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _plain(value: Any) -> Any:
    """A JSON-able cell: numbers stay numbers (NaN, NA -> None), the rest text."""
    kind = type(value)
    if kind is str or kind is int:
        return value
    if kind is float:
        return None if value != value else value
    if missing(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value if isinstance(value, (int, float, str)) else str(value)


def board_columns(frame: Any, names: list[str | None] | None = None) -> dict[str, list]:
    """A leaderboard's columns ``names`` (those it has; all by default) as ``{column: [values]}``, rows aligned:
    the one conversion the page makes of it (a pandas DataFrame, rows as dicts with ``columns`` beside them, or
    a list of row dicts)."""
    dataframe = hasattr(frame, "to_dict") and hasattr(frame, "columns")
    rows = [] if dataframe else getattr(frame, "rows", frame)
    have = [str(c) for c in frame.columns] if dataframe or hasattr(frame, "columns") else list(
        dict.fromkeys(k for row in rows for k in row))
    keep = have if names is None else [c for c in dict.fromkeys(names) if c in have]
    if dataframe:
        return {c: frame[c].tolist() for c in keep}
    return {c: [row.get(c) for row in rows] for c in keep}


def _columns(shown: list[str], table: dict[str, list]) -> list[str]:
    """rank, the identity columns that vary (of those :func:`select_columns` shows), the headline metrics, flags."""
    ident = [c for c in _IDENTITY if c in shown and (c in ("model", "method", "backend")
                                                     or len({_plain(v) for v in table[c]}) > 1)]
    metrics = [c for c in shown if c not in _IDENTITY and c not in ("rank", "checks", "flags")]
    return (["rank"] if "rank" in shown else []) + ident + metrics + ["flags"]


def _top_table(board: dict[str, list], ranked: list[int], cols: list[str], unit_of: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(_heading(c)).replace('_', '&#8203;_').replace('@', '&#8203;@')}</th>"
                   for c in cols if c != "flags")
    body = []
    for i in ranked:
        cells = []
        for c in cols:
            if c == "flags":
                continue
            v = board[c][i] if c in board else None
            unit = unit_of.get(c.split("@", 1)[0])
            text = _number(v, unit) if unit is not None and c not in _IDENTITY and c != "rank" else (
                "" if _plain(v) is None else str(_plain(v)))
            css = "num" if unit is not None or c == "rank" else "wrap" if c.endswith("_params") else ""
            text = html.escape(text) if css == "num" else html.escape(text).replace(",", ",&#8203;")  # params wrap
            cells.append(f'<td class="{css}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="board top"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _heading(column: str) -> str:
    return {"method_params": "params", "backend_params": "backend params"}.get(column, column)


def build_report(db: str | Path, *, machine: str | None = None, top: int = TOP_N,
                 table_rows: int = TABLE_ROWS) -> str:
    """The report's HTML text."""
    return "\n".join(report_parts(db, machine=machine, top=top, table_rows=table_rows))


def report_parts(db: str | Path, *, machine: str | None = None, top: int = TOP_N,
                 table_rows: int = TABLE_ROWS) -> list[str]:
    """The report's HTML, in the pieces :func:`write_report` writes one after another (never joined: with
    plotly.js and the table's data, the page is megabytes)."""
    from harness.query.columns import metric_columns, resolve_column
    from harness.query.leaderboard import board as leaderboard
    from harness.query.leaderboard import rank, read_catalogue, runs, select_columns
    from harness.query.refs import resolve_machine
    from harness.store.check import open_readonly

    frame = leaderboard(db, machine=machine)
    unit_of = units(db)
    catalogue = read_catalogue(db)
    metric_cols = metric_columns(frame)

    def column(name: str) -> str | None:
        try:
            return resolve_column(name, list(metric_cols))
        except QueryError:
            return None

    acc, lat, size = column(ACCURACY), column(LATENCY), column(SIZE)
    # Only the columns the plots read, as lists: the page never holds the whole leaderboard twice.
    board = board_columns(frame, [*_IDENTITY, "flags", acc, lat, size, "nonzero_params", "capacity_density",
                                  "top1", "perplexity"])
    n_rows = len(board.get("model", []))
    every = list(range(n_rows))
    sections: list[str] = []  # each plot's <section>, plotly.js inlined in the first

    def plot(div_id: str, heading: str, fig: dict, attrs: str) -> None:
        wide = " wide" if div_id.startswith("history") else ""
        sections.append(f'<section class="plot{wide}" {attrs}><h2>{html.escape(heading)}</h2>'
                        f"{figure_html(fig, div_id, include_plotlyjs=not sections)}</section>")

    if acc and lat:
        for backend in sorted({b for b in board["backend"] if isinstance(b, str)}):
            rows = [i for i in every if board["backend"][i] == backend]
            fig, n = scatter(board, rows, lat, acc, x_max=False, y_max=True, by=None, unit_of=unit_of,
                             title=f"{acc} against {lat} on {backend}")
            plot(f"pareto-latency-{backend}", f"Accuracy against latency: {backend}", fig, f'data-points="{n}"')
    if acc and size:
        fig, n = scatter(board, every, size, acc, x_max=False, y_max=True, by="backend", unit_of=unit_of,
                         title=f"{acc} against {size} (one frontier per backend)")
        plot("pareto-size", "Accuracy against size", fig, f'data-points="{n}"')
    for div_id, heading, fig, n in density_figures(frame, board, unit_of):
        plot(div_id, heading, fig, f'data-points="{n}"')
    machines = ", ".join(sorted(set(board["machine"]))) if n_rows else "-"
    del board

    table_frame = rank(frame, acc, higher=True, catalogue=catalogue) if acc else frame
    del frame
    shown = list(select_columns(table_frame, None).columns)
    table = board_columns(table_frame, [*shown, *_IDENTITY, "rank", "flags"])
    del table_frame
    ranked = [i for i, r in enumerate(table.get("rank", [])) if not missing(r)]
    entries = [tuple(table[c][i] for c in ("model", "dataset", "method", "method_params", "seed", "backend"))
               for i in ranked]
    conn = open_readonly(db)
    try:
        machine_hash = resolve_machine(conn, machine) if machine != "all" else resolve_machine(conn, None)
    finally:
        conn.close()
    history_note = ""
    if machine_hash:
        for metric, batch, heading in ((LATENCY, 1, "History: median latency at batch 1"),
                                       (ACCURACY, None, "History: top-1 accuracy")):
            data = history_rows(db, metric, machine_hash, batch, entries)
            measured = sorted({rid for per in data.relative.values() for rid in per})
            if len(measured) >= 2:  # one run is a point, not a history
                fig, panels = history(data, metric, f"{metric}@b{batch}" if batch else metric, unit_of, heading)
                plot(f"history-{metric}", heading, fig,
                     f'data-panels="{panels}" data-cells="{data.cells(measured[-1])}"')
            elif measured and not history_note:
                history_note = ('<section class="plot wide" id="history"><h2>History</h2><p>One run on this '
                                "machine so far: each later run (<code>harness run --no-resume</code>) adds a point "
                                "to the history of latency and accuracy.</p></section>")

    cols = _columns(shown, table)
    run_rows = runs(db)
    name = Path(db).stem
    flags = table.get("flags", [])
    n_flagged = sum(1 for text in flags if flagged(text))
    kinds: dict[str, int] = {}
    for text in flags:
        for kind in sorted({k for k, _ in flag_parts(text)}):
            kinds[kind] = kinds.get(kind, 0) + 1
    parts = [_HEAD.format(style=_STYLE, generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                          db=html.escape(str(db)), machine=html.escape(machines),
                          runs=f"{len(run_rows)} run{'' if len(run_rows) == 1 else 's'}")]
    flag_text = " ".join(f'<span class="badge {_BADGE.get(k, "grey")}">{html.escape(k)}</span> {n}'
                         for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])) or "none"
    latest = run_rows[-1] if run_rows else None
    latest_text = f", latest {html.escape(_started(latest['started_at']))}" if latest else ""
    parts.append('<section id="summary"><h2>Summary</h2><div class="cards">'
                 f'<div class="card"><b>{n_rows}</b>entries</div>'
                 f'<div class="card"><b>{len(ranked)}</b>ranked{f" by {html.escape(acc)}" if acc else ""}</div>'
                 f'<div class="card"><b>{n_flagged}</b>flagged, never ranked</div>'
                 f'<div class="card"><b>{len(run_rows)}</b>{"run" if len(run_rows) == 1 else "runs"}'
                 f'{latest_text}</div></div>'
                 f'<p class="flags">Flags: {flag_text}</p>')
    if acc and ranked:
        parts.append(f"<h3>Top {min(top, len(ranked))} by {html.escape(acc)}</h3>")
        parts.append(_top_table(table, ranked[:top], cols, unit_of))
    parts.append('<p class="nav">Below: <a href="#plots">plots</a> · <a href="#leaderboard">the whole '
                 'leaderboard</a> (sortable, filterable) · <a href="#runs">runs</a></p></section>')
    parts.append('<section id="plots">')
    parts += sections
    parts.append(history_note + "</section>")
    parts.append(_leaderboard_section(table, n_rows, cols, unit_of, table_rows, name, acc))
    parts.append(_runs_section(run_rows, name))
    script = (Path(__file__).parent / "board.js").read_text(encoding="utf-8")
    parts.append(f"<script>{script}</script></body></html>")
    return parts


def _leaderboard_section(table: dict[str, list], n_rows: int, cols: list[str], unit_of: dict[str, str], limit: int,
                         name: str, acc: str | None) -> str:
    shown = min(n_rows, limit)
    spec = []
    for c in cols:
        unit = unit_of.get(c.split("@", 1)[0]) if c not in _IDENTITY and c not in ("rank", "flags") else None
        spec.append({"name": c, "title": _heading(c), "unit": unit, "num": unit is not None or c == "rank",
                     "label": axis_title(c, unit_of) if unit is not None else _heading(c)})
    columns = []  # column-wise: one conversion per column, not per cell
    for c in cols:
        values = table[c][:shown] if c in table else [None] * shown
        if c == "flags":
            columns.append([[[k, t] for k, t in flag_parts(v)] for v in values])
            continue
        unit = unit_of.get(c.split("@", 1)[0]) if c not in _IDENTITY and c != "rank" else None
        plain = [_plain(v) for v in values]
        columns.append([[v, _number(v, unit)] if v is not None else None for v in plain] if unit is not None
                       else plain)
    data = [list(row) for row in zip(*columns)]
    more = ""
    if n_rows > limit:
        more = (f'<p class="more">The table holds the first {limit} of {n_rows} entries. See all of them in '
                f'<code>harness serve</code>: <a href="http://127.0.0.1:8001/{html.escape(name)}/leaderboard?'
                f'metric={html.escape(acc or "top1")}">/{html.escape(name)}/leaderboard?metric='
                f'{html.escape(acc or "top1")}</a> (the canned query, ranked by the metric).</p>')
    payload = json.dumps({"columns": spec, "rows": data}, separators=(",", ":")).replace("</", "<\\/")
    return ('<section id="leaderboard"><h2>Leaderboard</h2><p>Latest result of every cell'
            + (f", ranked by {html.escape(acc)}" if acc else "") + ". Flagged rows failed a gate: they are shown, "
            "never ranked, and never on a frontier. Click a heading to sort; type to filter.</p>" + more
            + '<div class="controls"><input type="search" id="board-filter" placeholder="filter: model, method, '
            'flag...">  <label><input type="checkbox" id="board-ranked"> ranked only</label> '
            '<span id="board-count"></span> <button id="board-prev">&lt; previous</button> '
            '<button id="board-next">next &gt;</button></div>'
            f'<table class="board" id="board"><thead></thead><tbody></tbody></table>'
            f'<script type="application/json" id="board-data">{payload}</script></section>')


def _runs_section(run_rows: list[dict], name: str) -> str:
    cols = ["id", "suite_name", "status", "started_at", "ok", "skipped", "failed"]
    newest = list(reversed(run_rows))[:RUNS_SHOWN]
    head = "".join(f"<th>{c}</th>" for c in cols)
    def cell(r: dict, c: str) -> str:
        v = r.get(c)
        return "" if v is None else _started(v) if c == "started_at" else str(v)

    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r, c))}</td>" for c in cols) + "</tr>" for r in newest)
    more = (f"<p class=\"more\">The newest {RUNS_SHOWN} of {len(run_rows)} runs; all in <code>harness runs</code> "
            f"or <code>harness serve</code> (/{html.escape(name)}/runs).</p>" if len(run_rows) > RUNS_SHOWN else "")
    return f'<section id="runs"><h2>Runs</h2>{more}<table class="runs"><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></section>"


def _started(text: Any) -> str:
    """A run's start time as people read it: ``2026-12-03 13:06 UTC``."""
    return f"{when(str(text))[:16]} UTC" if text else ""


def write_report(db: str | Path, output: str | Path, *, machine: str | None = None) -> Path:
    """Write the report to ``output`` (folders created); returns its path."""
    parts = report_parts(db, machine=machine)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for i, part in enumerate(parts):
            f.write("\n" if i else "")
            f.write(part)
    return out


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1360px; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e4e4e4; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f6f6f6; position: sticky; top: 0; white-space: normal; vertical-align: bottom; min-width: 3em; }
#board th { cursor: pointer; user-select: none; }
#board th.asc::after { content: " \\25B2"; } #board th.desc::after { content: " \\25BC"; }
td.flags { white-space: normal; max-width: 220px; }
td.wrap { white-space: normal; max-width: 190px; }
.badge { display: inline-block; padding: 1px 6px; margin: 1px 2px; border-radius: 8px; font-size: 11px;
         color: #fff; white-space: nowrap; }
.badge.amber { background: #b26a00; } .badge.red { background: #c62828; } .badge.grey { background: #666; }
.badge.blue { background: #1565c0; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1em; min-width: 9em; }
.card b { display: block; font-size: 1.6em; }
.controls { margin: 0.5em 0; } .controls > * { margin-right: 0.8em; }
.controls input[type=search] { width: 24em; padding: 3px; }
p.more { background: #fff8e1; padding: 0.4em 0.8em; border-left: 3px solid #b26a00; }
#plots { display: grid; grid-template-columns: 1fr 1fr; gap: 0 1.5em; }
section.plot { margin-top: 1em; min-width: 0; } section.plot.wide { grid-column: 1 / -1; }
section.plot h2 { font-size: 1.15em; }
"""

_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>harness report</title>
<style>{style}</style></head><body>
<h1>harness report</h1>
<p>Generated {generated} from <code>{db}</code> ({runs}); machine {machine}.</p>
"""
