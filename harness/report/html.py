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
import math
from pathlib import Path
from typing import Any

from harness.query.refs import QueryError
from harness.report.plots import PLOT_CONFIG, axis_title, density_figures, history, history_rows, scatter, units

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
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    v = float(value)
    if unit == "bytes":
        for size, suffix in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
            if abs(v) >= size:
                return f"{v / size:.3g} {suffix}"
        return f"{v:.0f} B"
    if unit == "fraction":
        return f"{v:.4f}"
    return f"{v:.4g}"


def _plain(value: Any) -> Any:
    """A JSON-able cell: numbers stay numbers (NaN, NA -> None), the rest text."""
    if value is None or type(value).__name__ == "NAType":
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value if isinstance(value, (int, str)) else str(value)


def _columns(table: Any) -> list[str]:
    """rank, the identity columns that vary, the headline metrics, flags."""
    from harness.query.leaderboard import select_columns

    shown = select_columns(table, None)
    ident = [c for c in _IDENTITY if c in shown.columns and (c in ("model", "method", "backend")
                                                             or shown[c].nunique(dropna=False) > 1)]
    metrics = [c for c in shown.columns if c not in _IDENTITY and c not in ("rank", "checks", "flags")]
    return (["rank"] if "rank" in shown.columns else []) + ident + metrics + ["flags"]


def _top_table(table: Any, cols: list[str], unit_of: dict[str, str], n: int) -> str:
    ranked = table[table["rank"].notna()].head(n) if "rank" in table.columns else table.head(n)
    head = "".join(f"<th>{html.escape(_heading(c)).replace('_', '&#8203;_').replace('@', '&#8203;@')}</th>"
                   for c in cols if c != "flags")
    body = []
    for _, r in ranked.iterrows():
        cells = []
        for c in cols:
            if c == "flags":
                continue
            v = r[c]
            unit = unit_of.get(c.split("@", 1)[0])
            text = _number(v, unit) if unit is not None and c not in _IDENTITY and c != "rank" else (
                "" if _plain(v) is None else str(_plain(v)))
            css = "num" if unit is not None or c == "rank" else "wrap" if c.endswith("_params") else ""
            cells.append(f'<td class="{css}">{html.escape(text).replace(",", ",&#8203;")}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="board top"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _heading(column: str) -> str:
    return {"method_params": "params", "backend_params": "backend params"}.get(column, column)


def build_report(db: str | Path, *, machine: str | None = None, top: int = TOP_N,
                 table_rows: int = TABLE_ROWS) -> str:
    """The report's HTML text."""
    from harness.query.columns import metric_columns, resolve_column
    from harness.query.leaderboard import leaderboard, rank, read_catalogue, runs
    from harness.query.refs import resolve_machine
    from harness.store.check import open_readonly

    board = leaderboard(db, machine=machine)
    unit_of = units(db)
    catalogue = read_catalogue(db)
    metric_cols = metric_columns(board)

    def column(name: str) -> str | None:
        try:
            return resolve_column(name, list(metric_cols))
        except QueryError:
            return None

    acc, lat, size = column(ACCURACY), column(LATENCY), column(SIZE)
    sections: list[tuple[str, str, Any, str]] = []  # (id, heading, figure, data attributes)
    if acc and lat:
        for backend, group in board[board["backend"].notna()].groupby("backend", sort=True):
            fig, n = scatter(group, lat, acc, x_max=False, y_max=True, by=None, unit_of=unit_of,
                             title=f"{acc} against {lat} on {backend}")
            sections.append((f"pareto-latency-{backend}", f"Accuracy against latency: {backend}", fig,
                             f'data-points="{n}"'))
    if acc and size:
        fig, n = scatter(board, size, acc, x_max=False, y_max=True, by="backend", unit_of=unit_of,
                         title=f"{acc} against {size} (one frontier per backend)")
        sections.append(("pareto-size", "Accuracy against size", fig, f'data-points="{n}"'))
    sections += [(div_id, heading, fig, f'data-points="{n}"') for div_id, heading, fig, n in density_figures(board)]

    table = rank(board, acc, higher=True, catalogue=catalogue) if acc else board
    entries = [tuple(r) for r in table[table["rank"].notna()][["model", "method", "method_params", "backend"]]
               .itertuples(index=False)] if acc else []
    conn = open_readonly(db)
    try:
        machine_hash = resolve_machine(conn, machine) if machine != "all" else resolve_machine(conn, None)
    finally:
        conn.close()
    if machine_hash:
        for metric, batch, heading in ((LATENCY, 1, "History: median latency at batch 1"),
                                       (ACCURACY, None, "History: top-1 accuracy")):
            overview, series = history_rows(db, metric, machine_hash, batch, entries)
            if len(overview):
                fig, panels = history(overview, series, metric, f"{metric}@b{batch}" if batch else metric, unit_of,
                                      heading)
                cells = len(overview[overview["run_id"] == overview["run_id"].max()])
                sections.append((f"history-{metric}", heading, fig, f'data-panels="{panels}" data-cells="{cells}"'))

    cols = _columns(table)
    run_rows = runs(db)
    name = Path(db).stem
    flagged = table["flags"].notna() & (table["flags"] != "") if len(table) else table.get("flags", [])
    kinds: dict[str, int] = {}
    for text in table.loc[flagged, "flags"] if len(table) else []:
        for kind in sorted({k for k, _ in flag_parts(text)}):
            kinds[kind] = kinds.get(kind, 0) + 1
    n_ranked = int(table["rank"].notna().sum()) if "rank" in table.columns else 0
    machines = ", ".join(sorted(set(board["machine"]))) if len(board) else "-"
    parts = [_HEAD.format(style=_STYLE, generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                          db=html.escape(str(db)), machine=html.escape(machines), runs=len(run_rows))]
    flag_text = " ".join(f'<span class="badge {_BADGE.get(k, "grey")}">{html.escape(k)}</span> {n}'
                         for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])) or "none"
    latest = run_rows[-1] if run_rows else None
    latest_text = f", latest {html.escape(str(latest['started_at'])[:16])}" if latest else ""
    parts.append('<section id="summary"><h2>Summary</h2><div class="cards">'
                 f'<div class="card"><b>{len(table)}</b>entries</div>'
                 f'<div class="card"><b>{n_ranked}</b>ranked{f" by {html.escape(acc)}" if acc else ""}</div>'
                 f'<div class="card"><b>{int(flagged.sum()) if len(table) else 0}</b>flagged, never ranked</div>'
                 f'<div class="card"><b>{len(run_rows)}</b>runs'
                 f'{latest_text}</div></div>'
                 f'<p class="flags">Flags: {flag_text}</p>')
    if acc and n_ranked:
        parts.append(f"<h3>Top {min(top, n_ranked)} by {html.escape(acc)}</h3>")
        parts.append(_top_table(table, cols, unit_of, top))
    parts.append('<p class="nav">Below: <a href="#plots">plots</a> · <a href="#leaderboard">the whole '
                 'leaderboard</a> (sortable, filterable) · <a href="#runs">runs</a></p></section>')
    parts.append('<section id="plots">')
    for i, (div_id, heading, fig, attrs) in enumerate(sections):
        wide = " wide" if div_id.startswith("history") else ""
        parts.append(f'<section class="plot{wide}" {attrs}><h2>{html.escape(heading)}</h2>')
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, div_id=div_id, config=PLOT_CONFIG))
        parts.append("</section>")
    parts.append("</section>")
    parts.append(_leaderboard_section(table, cols, unit_of, table_rows, name, acc))
    parts.append(_runs_section(run_rows, name))
    script = (Path(__file__).parent / "board.js").read_text(encoding="utf-8")
    parts.append(f"<script>{script}</script></body></html>")
    return "\n".join(parts)


def _leaderboard_section(table: Any, cols: list[str], unit_of: dict[str, str], limit: int, name: str,
                         acc: str | None) -> str:
    shown = table.head(limit)
    spec = []
    for c in cols:
        unit = unit_of.get(c.split("@", 1)[0]) if c not in _IDENTITY and c not in ("rank", "flags") else None
        spec.append({"name": c, "title": _heading(c), "unit": unit, "num": unit is not None or c == "rank",
                     "label": axis_title(c, unit_of) if unit is not None else _heading(c)})
    columns = []  # column-wise: one conversion per column, not per cell
    for c in cols:
        values = shown[c].tolist() if c in shown.columns else [None] * len(shown)
        if c == "flags":
            columns.append([[[k, t] for k, t in flag_parts(v)] for v in values])
            continue
        unit = unit_of.get(c.split("@", 1)[0]) if c not in _IDENTITY and c != "rank" else None
        plain = [_plain(v) for v in values]
        columns.append([[v, _number(v, unit)] if v is not None else None for v in plain] if unit is not None
                       else plain)
    data = [list(row) for row in zip(*columns)]
    more = ""
    if len(table) > limit:
        more = (f'<p class="more">The table holds the first {limit} of {len(table)} entries. See all of them in '
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
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>"
                                    for c in cols) + "</tr>" for r in newest)
    more = (f"<p class=\"more\">The newest {RUNS_SHOWN} of {len(run_rows)} runs; all in <code>harness runs</code> "
            f"or <code>harness serve</code> (/{html.escape(name)}/runs).</p>" if len(run_rows) > RUNS_SHOWN else "")
    return f'<section id="runs"><h2>Runs</h2>{more}<table class="runs"><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></section>"


def write_report(db: str | Path, output: str | Path, *, machine: str | None = None) -> Path:
    """Write the report to ``output`` (folders created); returns its path."""
    text = build_report(db, machine=machine)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
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
<p>Generated {generated} from <code>{db}</code> ({runs} runs); machine {machine}.</p>
"""
