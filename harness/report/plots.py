"""The report's figures: Pareto scatters and history as small multiples, every axis titled with its unit.

A figure is a plain dict in plotly's documented figure schema (``{"data": [traces], "layout": {...}}``,
https://plotly.com/javascript/reference/), drawn by the plotly.js that the plotly package bundles
(:func:`plotly_js`), inlined once per page; :func:`figure_html` writes the same ``<div>`` and
``Plotly.newPlot`` call as ``plotly.io.to_html``. Building the dicts directly skips
``plotly.graph_objects``, whose import and per-property validation were most of the report's time.

- A Pareto scatter draws the frontier (joined), the dominated entries and the flagged ones (never
  ranked) as three traces; each point's hover names the model, method, parameters and backend.
- History is drawn as small multiples, never one line per cell: one panel per backend with the median
  over every cell of its value relative to the cell's first run and the 10-90% band across cells (the
  whole population at any size), then one panel per top-ranked entry with its value per run and the
  95% confidence interval of the median where the run stored one (``stats.ci95_median_ms``). The x axis
  is the run's start time (UTC); hover names the run id and tag.

Figures take the leaderboard as columns (``{name: [values]}``, one list per column, rows aligned).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from harness.store.check import open_readonly

#: Panels of top-ranked entries in a history figure.
TOP_SERIES = 8
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
#: The look of every figure (no plotly template: plotly.js draws its plain defaults under these).
LAYOUT = {"plot_bgcolor": "white", "paper_bgcolor": "white",
          "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#2a3f5f"},
          "colorway": ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880"]}
AXES = {"showgrid": True, "gridcolor": "#ebf0f8", "zeroline": False, "linecolor": "#c8d4e3", "ticks": "",
        "automargin": True}  # long tick labels push the margin instead of running into the axis title
BAND = "rgba(31,119,180,0.18)"
#: Legends go under a plot, in rows: beside it, long trace names squeezed the plot to a third of its width.
LEGEND_BELOW = {"legend": {"orientation": "h", "x": 0, "y": -0.2, "yanchor": "top"}, "height": 470,
                "margin": {"l": 70, "r": 20, "t": 30, "b": 130}}


def plotly_js() -> str:
    """plotly.js as the plotly package ships it (``package_data/plotly.min.js``), found without importing plotly."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed: harness report inlines its plotly.js")
    return (Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js").read_text(
        encoding="utf-8")


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity made ``None`` (JSON has neither; plotly.js skips nulls)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def figure_html(fig: dict, div_id: str, *, include_plotlyjs: bool = False) -> str:
    """The ``<div>`` that draws ``fig`` (what ``plotly.io.to_html(full_html=False)`` writes), with plotly.js
    before it when ``include_plotlyjs``."""
    def js(obj: Any) -> str:
        return json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")

    height = fig["layout"].get("height")
    lib = f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script><script>{plotly_js()}</script>" \
        if include_plotlyjs else ""
    return (f'<div style="height:{f"{height}px" if height else "100%"}; width:100%;">{lib}'
            f'<div id="{div_id}" class="plotly-graph-div" style="height:100%; width:100%;"></div>'
            f'<script>window.PLOTLYENV=window.PLOTLYENV || {{}}; if (document.getElementById("{div_id}")) {{'
            f'Plotly.newPlot("{div_id}", {js(fig["data"])}, {js(fig["layout"])}, {js(PLOT_CONFIG)})}};</script></div>')


def _layout(**layout: Any) -> dict:
    out = {**LAYOUT, **layout}
    for key in [k for k in out if k.startswith(("xaxis", "yaxis"))]:
        out[key] = {**AXES, **out[key]}
    return out


def units(db: str | Path) -> dict[str, str]:
    """``{metric: unit}`` from the metric catalogue."""
    conn = open_readonly(db)
    try:
        return {r[0]: r[1] or "" for r in conn.execute("SELECT name, unit FROM metrics").fetchall()}
    finally:
        conn.close()


def axis_title(column: str, unit_of: dict[str, str]) -> str:
    """``p50_ms@b1`` -> ``p50_ms at batch 1 (ms)``: the column, its batch size and its unit."""
    metric, _, batch = column.partition("@b")
    unit = unit_of.get(metric, "")
    return f"{metric}{f' at batch {batch}' if batch else ''}{f' ({unit})' if unit else ''}"


def missing(value: Any) -> bool:
    """``None``, NaN or pandas' NA: no value."""
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ == "NAType"


def flagged(text: Any) -> bool:
    """A row's ``flags`` says it failed a gate."""
    return isinstance(text, str) and text != ""


def _hover(board: dict[str, list], rows: list[int]) -> list[str]:
    out = []
    for i in rows:
        params = board["method_params"][i]
        params = f"({params})" if isinstance(params, str) and params else ""
        flags = board["flags"][i]
        flags = f"<br>flagged: {html.escape(flags)}" if flagged(flags) else ""
        out.append(f"{html.escape(str(board['model'][i]))} / {html.escape(str(board['method'][i]))}"
                   f"{html.escape(params)} / {html.escape(str(board['backend'][i]))}{flags}")
    return out


def scatter(board: dict[str, list], rows: list[int], x: str, y: str, *, x_max: bool, y_max: bool, title: str,
            by: str | None, unit_of: dict[str, str]) -> tuple[dict, int]:
    """A Pareto scatter of ``board``'s ``x`` and ``y`` columns over ``rows`` (one frontier per value of
    ``by``); returns the figure and how many points it has."""
    from harness.query.pareto import non_dominated

    xs, ys, flags = board[x], board[y], board["flags"]
    points = [i for i in rows if not missing(xs[i]) and not missing(ys[i])]
    groups: dict[Any, list[int]] = {}
    for i in points:
        groups.setdefault(None if by is None else board[by][i], []).append(i)
    traces = []
    size = 8 if len(points) < 500 else 5
    signs = (-1.0 if y_max else 1.0, -1.0 if x_max else 1.0)
    colours = LAYOUT["colorway"]
    for g, name in enumerate(sorted(groups, key=lambda g: (g is None, str(g)))):
        group = groups[name]
        # One colour per group (the symbol tells frontier, dominated and flagged apart); one group: three.
        colour = [colours[g % len(colours)]] * 3 if by is not None else colours[:3]
        ranked = [i for i in group if not flagged(flags[i])]
        mask = non_dominated([[float(ys[i]) * signs[0], float(xs[i]) * signs[1]] for i in ranked]) \
            if ranked else []
        front = sorted((i for i, keep in zip(ranked, mask) if keep), key=lambda i: float(xs[i]))
        others = [i for i, keep in zip(ranked, mask) if not keep]
        for part, label, mode, symbol, c in ((front, "Pareto frontier", "lines+markers", "circle", colour[0]),
                                             (others, "dominated", "markers", "circle-open", colour[1]),
                                             ([i for i in group if flagged(flags[i])], "flagged (never ranked)",
                                              "markers", "x", colour[2])):
            if part:
                # Grouped per value of ``by`` in the legend, its value the group's title: one column each.
                group_of = {} if name is None else {"legendgroup": str(name), "legendgrouptitle": {"text": str(name)}}
                traces.append({"type": "scatter", "x": [float(xs[i]) for i in part],
                               "y": [float(ys[i]) for i in part], "mode": mode, "name": label,
                               "marker": {"symbol": symbol, "size": size, "color": c}, "line": {"color": c},
                               "hovertext": _hover(board, part), "hoverinfo": "text+x+y", **group_of})
    # The page's heading names the plot; a title inside it would sit under plotly's toolbar.
    layout = _layout(xaxis={"title": {"text": axis_title(x, unit_of)}},
                     yaxis={"title": {"text": axis_title(y, unit_of)}}, meta={"title": title}, **LEGEND_BELOW)
    return {"data": traces, "layout": layout}, len(points)


def _where(metric: str, machine_hash: str, batch_size: int | None) -> tuple[str, list]:
    where = ["m.metric = ?", "r.machine_hash = ?", "c.status = 'ok'", "m.value IS NOT NULL"]
    args: list = [metric, machine_hash]
    if batch_size is not None:
        where.append("json_extract(m.params, '$.batch_size') = ?")
        args.append(batch_size)
    return " AND ".join(where), args


@dataclass
class History:
    """One metric's ok values on one machine (:func:`history_rows`)."""

    #: ``{run id: (started_at, tag)}``, oldest run first.
    runs: dict[int, tuple[str, str | None]]
    #: ``{backend: {run id: [every cell's value relative to its first run]}}`` (``""``: no backend).
    relative: dict[str, dict[int, list[float]]]
    #: ``[(label, [(run id, value, ci_low, ci_high)])]``: the top entries, best first, oldest run first.
    series: list[tuple[str, list[tuple]]] = field(default_factory=list)

    def cells(self, run_id: int) -> int:
        """How many cells have a value in run ``run_id``."""
        return sum(len(per.get(run_id, ())) for per in self.relative.values())


def history_rows(db: str | Path, metric: str, machine_hash: str, batch_size: int | None,
                 top: list[tuple]) -> History:
    """``metric``'s ok values on one machine: every cell's value relative to its first run, and the values of
    the first :data:`TOP_SERIES` entries of ``top`` ((model, dataset, method, method_params, seed, backend) as
    the leaderboard shows them, best first) with the stored 95% confidence interval of the median (empty when
    none)."""
    from harness.query.columns import label, params_text

    where, args = _where(metric, machine_hash, batch_size)
    conn = open_readonly(db)
    conn.row_factory = None
    try:
        found = conn.execute("SELECT id, started_at, tag FROM runs WHERE machine_hash = ?", [machine_hash]).fetchall()
        runs = {r[0]: (r[1], r[2]) for r in sorted(found, key=lambda r: (r[1] or "", r[0]))}
        rows = conn.execute("SELECT c.run_id, c.backend, c.cell_key, m.params, m.value FROM measurements m "
                            f"JOIN cells c ON c.id = m.cell_id JOIN runs r ON r.id = c.run_id WHERE {where}",
                            args).fetchall()
        wanted = top[:TOP_SERIES * 4]  # the best entries; a few may have no value of this metric
        models = json.dumps(sorted({str(e[0]).split("(", 1)[0] for e in wanted}))
        methods = json.dumps(sorted({str(e[2]) for e in wanted}))
        # The few cells of those models and methods first (materialized), then their measurements by cell:
        # not every measurement of the metric.
        values = conn.execute(
            "WITH wanted AS MATERIALIZED (SELECT * FROM cells WHERE model IN (SELECT value FROM json_each(?)) "
            "AND method IN (SELECT value FROM json_each(?))) "
            "SELECT c.run_id, c.model, c.model_params, c.dataset, c.dataset_params, c.method, c.method_params, "
            "c.seed, c.backend, m.value, json_extract(m.stats, '$.ci95_median_ms[0]'), "
            "json_extract(m.stats, '$.ci95_median_ms[1]') FROM wanted c CROSS JOIN measurements m ON "
            f"m.cell_id = c.id JOIN runs r ON r.id = c.run_id WHERE {where}", [models, methods, *args]).fetchall()
    finally:
        conn.close()
    # Relative values in Python, run by run from the oldest: no window function and no sort in SQL.
    by_run: dict[int, list] = {}
    for row in rows:
        by_run.setdefault(row[0], []).append(row)
    first: dict[tuple, float] = {}
    relative: dict[str, dict[int, list[float]]] = {}
    for run_id in runs:
        for _, backend, key, params, value in by_run.get(run_id, ()):
            base = first.setdefault((key, params), value)
            if base:
                relative.setdefault(backend or "", {}).setdefault(run_id, []).append(value / base)
    by_entry: dict[tuple, list[tuple]] = {}
    for run_id, model, mp, dataset, dp, method, params, seed, backend, value, low, high in values:
        key = (label(model, mp), label(dataset, dp), method, params_text(json.loads(params or "{}")), seed,
               backend or "")
        by_entry.setdefault(key, []).append((run_id, value, low, high))
    order = {rid: n for n, rid in enumerate(runs)}
    series = []
    for model, dataset, method, mparams, seed, backend in wanted:
        part = by_entry.get((model, dataset, method, mparams or "", seed, backend or ""))
        if part and len(series) < TOP_SERIES:
            series.append((_label(model, method, mparams, backend), sorted(part, key=lambda r: order[r[0]])))
    return History(runs, relative, series)


def _label(model: str, method: str, mparams: str, backend: str | None) -> str:
    return f"{model} / {method}{f'({mparams})' if mparams else ''} / {backend or '-'}"


def when(started_at: str) -> str:
    """An ISO start time as plotly's date axis reads it: ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    try:
        t = _dt.datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return str(started_at)
    if t.tzinfo is not None:
        t = t.astimezone(_dt.UTC).replace(tzinfo=None)
    return t.isoformat(sep=" ")


def quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values, linearly interpolated (numpy's and pandas' default)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def history(data: History, metric: str, column: str, unit_of: dict[str, str], title: str) -> tuple[dict, int]:
    """Small multiples of :func:`history_rows`'s values: an overview panel per backend (median and 10-90% band
    of every cell's value relative to its first run), then one panel per top entry. Returns the figure and the
    number of panels."""
    backends = sorted(data.relative) or [""]
    titles = [f"every cell{f' on {b}' if b else ''}: median and 10-90% band" for b in backends]
    titles += [name for name, _ in data.series]
    cols, n_rows = 2, -(-len(titles) // 2)
    v_gap, h_gap = min(0.12, 0.5 / max(n_rows, 1)), 0.1  # as plotly's make_subplots spaces them
    row_h, col_w = (1 - v_gap * (n_rows - 1)) / n_rows, (1 - h_gap) / cols
    traces: list[dict] = []
    layout = _layout(height=250 * n_rows + 60, margin={"l": 70, "r": 20, "t": 40, "b": 50},
                     meta={"title": title}, annotations=[])
    dates = {rid: when(started) for rid, (started, _) in data.runs.items()}
    names = {rid: f"run {rid}{f' ({tag})' if tag else ''}" for rid, (_, tag) in data.runs.items()}

    def draw(i: int, at: list[int], mid: list, low: list, high: list, text: list, ytitle: str) -> None:
        r_, c_ = divmod(i, cols)
        n = "" if i == 0 else str(i + 1)
        top = 1 - r_ * (row_h + v_gap)
        x_dom = [c_ * (col_w + h_gap), c_ * (col_w + h_gap) + col_w]
        layout[f"xaxis{n}"] = {**AXES, "anchor": f"y{n}", "domain": x_dom, "title": {"text": "run start (UTC)"}}
        layout[f"yaxis{n}"] = {**AXES, "anchor": f"x{n}", "domain": [max(top - row_h, 0.0), top],
                               "title": {"text": ytitle, "standoff": 6}}
        layout["annotations"].append({"text": titles[i], "x": sum(x_dom) / 2, "y": top, "xref": "paper",
                                      "yref": "paper", "xanchor": "center", "yanchor": "bottom",
                                      "showarrow": False, "font": {"size": 11}})
        axes = {"xaxis": f"x{n}", "yaxis": f"y{n}"}
        x = [dates[rid] for rid in at]
        if low:
            traces.append({"type": "scatter", "x": x + x[::-1], "y": high + low[::-1], "fill": "toself",
                           "fillcolor": BAND, "mode": "lines", "line": {"width": 0}, "hoverinfo": "skip",
                           "showlegend": False, **axes})
        traces.append({"type": "scatter", "x": x, "y": mid, "mode": "lines+markers", "line": {"color": "#1f77b4"},
                       "hovertext": text, "hoverinfo": "text+x+y", "showlegend": False, **axes})

    for i, b in enumerate(backends):
        cells = data.relative.get(b, {})
        at = [rid for rid in data.runs if rid in cells]
        ordered = [sorted(cells[rid]) for rid in at]
        qs = [[quantile(values, q) for values in ordered] for q in (0.1, 0.5, 0.9)]
        draw(i, at, qs[1], qs[0], qs[2], [f"{names[rid]}: {len(cells[rid])} cells" for rid in at],
             f"{metric} / first run (ratio)")
    unit = axis_title(column, unit_of)
    for j, (_, part) in enumerate(data.series, start=len(backends)):
        banded = all(r[2] is not None and r[3] is not None for r in part)
        draw(j, [r[0] for r in part], [r[1] for r in part], [r[2] for r in part] if banded else [],
             [r[3] for r in part] if banded else [], [names[r[0]] for r in part], unit)
    return {"data": traces, "layout": layout}, len(titles)


def density_figures(frame: Any, board: dict[str, list], unit_of: dict[str, str]) -> list[tuple[str, str, dict, int]]:
    """One plot per dense family (:mod:`harness.query.density`) of the leaderboard ``frame`` (``board``: its
    columns): the family's points, its fitted curve, and the compressed models at their nonzero parameters,
    each hover naming its capacity density."""
    from harness.query import density

    groups, fits = density.families(frame)
    out = []
    nonzero = board.get("nonzero_params")
    density_of = board.get("capacity_density")
    for key, (metric, fit) in sorted(fits.items()):
        rows = [i for i, g in enumerate(groups) if g == key and not missing(nonzero[i])
                and not missing(board[metric][i])]
        xs, ys = density.curve_points(fit, metric)
        traces = [{"type": "scatter", "x": xs, "y": ys, "mode": "lines",
                   "name": f"fitted dense curve ({fit.points} points)"}]
        methods: dict[str, list[int]] = {}
        for i in rows:
            methods.setdefault(str(board["method"][i]), []).append(i)
        for name in sorted(methods):
            part = methods[name]
            hover = [f"{h}<br>capacity density {density_of[i]:.3g}" if density_of and not missing(density_of[i])
                     else f"{h}<br>capacity density: none" for h, i in zip(_hover(board, part), part)]
            traces.append({"type": "scatter", "x": [float(nonzero[i]) for i in part],
                           "y": [float(board[metric][i]) for i in part], "mode": "markers", "name": name,
                           "hovertext": hover, "hoverinfo": "text+x+y",
                           "marker": {"size": 9, "symbol": "diamond" if name == "dense" else "circle"}})
        arch, dataset, backend = key[0], key[1], key[2]
        layout = _layout(xaxis={"title": {"text": "nonzero parameters (count, log scale)"}, "type": "log"},
                         yaxis={"title": {"text": axis_title(metric, unit_of)}}, **LEGEND_BELOW,
                         meta={"title": f"{metric} against nonzero parameters: {arch} on {dataset}, {backend}"})
        out.append((f"density-{arch}-{dataset}-{backend}", f"Capacity density: {arch} on {dataset} ({backend})",
                    {"data": traces, "layout": layout}, len(rows)))
    return out
