"""The report's figures (plotly): Pareto scatters and history as small multiples, every axis titled with its unit.

- A Pareto scatter draws the frontier (joined), the dominated entries and the flagged ones (never
  ranked) as three traces; each point's hover names the model, method, parameters and backend.
- History is drawn as small multiples, never one line per cell: one panel per backend with the median
  over every cell of its value relative to the cell's first run and the 10-90% band across cells (the
  whole population at any size), then one panel per top-ranked entry with its value per run and the
  95% confidence interval of the median where the run stored one (``stats.ci95_median_ms``). The x axis
  is the run's start time; hover names the run id and tag.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from harness.store.check import open_readonly

#: Panels of top-ranked entries in a history figure.
TOP_SERIES = 8
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
#: The look of every figure, set by hand: plotly's named templates are deep-copied into each figure, which
#: cost about 0.2 s a figure (most of the report's time on a small store).
LAYOUT = {"template": "none", "plot_bgcolor": "white", "paper_bgcolor": "white",
          "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#2a3f5f"},
          "colorway": ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880"]}
AXES = {"showgrid": True, "gridcolor": "#ebf0f8", "zeroline": False, "linecolor": "#c8d4e3", "ticks": ""}


def _style(fig: Any, **layout: Any) -> None:
    fig.update_layout(**LAYOUT, **layout)
    fig.update_xaxes(**AXES)
    fig.update_yaxes(**AXES)


def units(db: str | Path) -> dict[str, str]:
    """``{metric: unit}`` from the metric catalogue."""
    conn = open_readonly(db)
    try:
        return {r[0]: r[1] or "" for r in conn.execute("SELECT name, unit FROM metrics")}
    finally:
        conn.close()


def axis_title(column: str, unit_of: dict[str, str]) -> str:
    """``p50_ms@b1`` -> ``p50_ms at batch 1 (ms)``: the column, its batch size and its unit."""
    metric, _, batch = column.partition("@b")
    unit = unit_of.get(metric, "")
    return f"{metric}{f' at batch {batch}' if batch else ''}{f' ({unit})' if unit else ''}"


def _hover(frame: Any) -> list[str]:
    out = []
    for r in frame.itertuples(index=False):
        params = f"({r.method_params})" if r.method_params else ""
        flags = f"<br>flagged: {html.escape(str(r.flags))}" if isinstance(r.flags, str) and r.flags else ""
        out.append(f"{html.escape(str(r.model))} / {html.escape(str(r.method))}{html.escape(params)} / "
                   f"{html.escape(str(r.backend))}{flags}")
    return out


def scatter(frame: Any, x: str, y: str, *, x_max: bool, y_max: bool, title: str, by: str | None,
            unit_of: dict[str, str]) -> tuple[Any, int]:
    """A Pareto scatter of ``frame``'s ``x`` and ``y`` columns (one frontier per value of ``by``)."""
    import plotly.graph_objects as go

    from harness.query.pareto import non_dominated

    points = frame[frame[x].notna() & frame[y].notna()]
    fig = go.Figure()
    groups = [(None, points)] if by is None else list(points.groupby(by, sort=True))
    for name, group in groups:
        suffix = f" ({name})" if name is not None else ""
        flagged = group["flags"].notna() & (group["flags"] != "")
        ranked = group[~flagged]
        signs = [-1.0 if y_max else 1.0, -1.0 if x_max else 1.0]
        mask = non_dominated(ranked[[y, x]].to_numpy(dtype=float) * signs)
        front, others = ranked[mask].sort_values(x), ranked[~mask]
        for part, label, mode, symbol in ((front, "Pareto frontier", "lines+markers", "circle"),
                                          (others, "dominated", "markers", "circle-open"),
                                          (group[flagged], "flagged (never ranked)", "markers", "x")):
            if part.empty:
                continue
            fig.add_trace(go.Scatter(x=part[x].tolist(), y=part[y].tolist(), mode=mode, name=label + suffix,
                                     marker={"symbol": symbol, "size": 8 if len(points) < 500 else 5},
                                     hovertext=_hover(part), hoverinfo="text+x+y"))
    # The page's heading names the plot; a title inside it would sit under plotly's toolbar.
    _style(fig, xaxis_title=axis_title(x, unit_of), yaxis_title=axis_title(y, unit_of), height=400,
           margin={"l": 70, "r": 20, "t": 30, "b": 60}, meta={"title": title})
    return fig, len(points)


def _where(metric: str, machine_hash: str, batch_size: int | None) -> tuple[str, list]:
    where = ["m.metric = ?", "r.machine_hash = ?", "c.status = 'ok'", "m.value IS NOT NULL"]
    args: list = [metric, machine_hash]
    if batch_size is not None:
        where.append("json_extract(m.params, '$.batch_size') = ?")
        args.append(batch_size)
    return " AND ".join(where), args


def history_rows(db: str | Path, metric: str, machine_hash: str, batch_size: int | None,
                 top: list[tuple]) -> tuple[Any, Any]:
    """Two frames of ``metric``'s ok values on one machine, oldest run first: every cell's value relative to
    its first run (``run_id, started_at, tag, backend, rel``: computed in SQL, no identity strings), and the
    values of the first :data:`TOP_SERIES` entries of ``top`` ((model, method, method_params as the
    leaderboard shows them, backend), best first) with the stored 95% confidence interval of the median
    (``ci_low``, ``ci_high``; empty when none)."""
    import pandas as pd

    from harness.query.columns import params_text

    where, args = _where(metric, machine_hash, batch_size)
    conn = open_readonly(db)
    conn.row_factory = None
    try:
        overview = pd.read_sql_query(
            "SELECT r.id AS run_id, r.started_at, r.tag, c.backend, m.value / first_value(m.value) OVER ("
            "PARTITION BY c.cell_key, m.params ORDER BY r.started_at, r.id) AS rel "
            "FROM measurements m JOIN cells c ON c.id = m.cell_id JOIN runs r ON r.id = c.run_id "
            f"WHERE {where} ORDER BY r.started_at, r.id", conn, params=args)
        wanted = top[:TOP_SERIES * 4]  # the best entries; a few may have no value of this metric
        triples = json.dumps(sorted({(m, me, b or "") for m, me, _, b in wanted}))
        values = pd.read_sql_query(
            "SELECT r.id AS run_id, r.started_at, r.tag, c.model, c.method, c.method_params, c.backend, m.value, "
            "json_extract(m.stats, '$.ci95_median_ms[0]') AS ci_low, "
            "json_extract(m.stats, '$.ci95_median_ms[1]') AS ci_high "
            "FROM measurements m JOIN cells c ON c.id = m.cell_id JOIN runs r ON r.id = c.run_id "
            f"WHERE {where} AND c.model || char(31) || c.method || char(31) || coalesce(c.backend, '') IN ("
            "SELECT json_extract(value, '$[0]') || char(31) || json_extract(value, '$[1]') || char(31) || "
            "json_extract(value, '$[2]') FROM json_each(?)) ORDER BY r.started_at, r.id",
            conn, params=[*args, triples])
        values["method_params"] = [params_text(json.loads(p)) for p in values["method_params"]]
        values["backend"] = values["backend"].fillna("")
        groups = dict(iter(values.groupby(["model", "method", "method_params", "backend"], sort=False)))
        series = []
        for model, method, mparams, backend in wanted:
            part = groups.get((model, method, mparams, backend or ""))
            if part is not None and len(series) < TOP_SERIES:
                series.append(part.assign(entry=_label(model, method, mparams, backend)))
    finally:
        conn.close()
    return overview, series


def _label(model: str, method: str, mparams: str, backend: str | None) -> str:
    return f"{model} / {method}{f'({mparams})' if mparams else ''} / {backend or '-'}"


def history(overview: Any, series: list, metric: str, column: str, unit_of: dict[str, str],
            title: str) -> tuple[Any, int]:
    """Small multiples of :func:`history_rows`'s frames: an overview panel per backend (median and 10-90%
    band of every cell's value relative to its first run), then one panel per top entry. Returns the figure
    and the number of panels."""
    import pandas as pd
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    def when(frame: Any) -> Any:
        return frame.assign(when=pd.to_datetime(frame["started_at"], utc=True, format="ISO8601"),
                            run=[f"run {i}{f' ({t})' if isinstance(t, str) and t else ''}"
                                 for i, t in zip(frame["run_id"], frame["tag"])])

    overview = when(overview)
    backends = sorted(set(overview["backend"].dropna())) or [None]
    titles = [f"every cell{f' on {b}' if b else ''}: median and 10-90% band" for b in backends]
    titles += [part["entry"].iloc[0] for part in series]
    cols = 2
    n_rows = -(-len(titles) // cols)
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=titles,
                        vertical_spacing=min(0.12, 0.5 / max(n_rows, 1)), horizontal_spacing=0.1)
    unit = axis_title(column, unit_of)
    band = "rgba(31,119,180,0.18)"

    def draw(i: int, x: list, mid: list, low: list, high: list, text: list, ytitle: str) -> None:
        r_, c_ = divmod(i, cols)
        if low:
            fig.add_trace(go.Scatter(x=x + x[::-1], y=high + low[::-1], fill="toself", fillcolor=band, mode="lines",
                                     line={"width": 0}, hoverinfo="skip", showlegend=False), row=r_ + 1, col=c_ + 1)
        fig.add_trace(go.Scatter(x=x, y=mid, mode="lines+markers", line={"color": "#1f77b4"}, hovertext=text,
                                 hoverinfo="text+x+y", showlegend=False), row=r_ + 1, col=c_ + 1)
        fig.update_yaxes(title_text=ytitle, row=r_ + 1, col=c_ + 1)

    for i, b in enumerate(backends):
        part = overview[overview["backend"].fillna("") == (b or "")]
        q = part.groupby(["when", "run"], sort=True)["rel"].quantile([0.1, 0.5, 0.9]).unstack()
        cells = part.groupby(["when", "run"], sort=True)["rel"].size()
        draw(i, [w for w, _ in q.index], list(q[0.5]), list(q[0.1]), list(q[0.9]),
             [f"{r}: {n} cells" for (_, r), n in zip(q.index, cells)], f"{metric} / first run (ratio)")
    for j, part in enumerate(series, start=len(backends)):
        part = when(part)
        ci = part[part["ci_low"].notna() & part["ci_high"].notna()]
        if len(ci) == len(part):
            draw(j, list(part["when"]), list(part["value"]), list(ci["ci_low"]), list(ci["ci_high"]),
                 list(part["run"]), unit)
        else:
            draw(j, list(part["when"]), list(part["value"]), [], [], list(part["run"]), unit)
    fig.update_xaxes(title_text="run start (UTC)")
    fig.update_annotations(font_size=11)
    _style(fig, height=250 * n_rows + 60, margin={"l": 70, "r": 20, "t": 40, "b": 50}, meta={"title": title})
    return fig, len(titles)


def density_figures(board: Any) -> list[tuple[str, str, Any, int]]:
    """One plot per dense family (:mod:`harness.query.density`): the family's points, its fitted curve, and the
    compressed models at their nonzero parameters, each hover naming its capacity density."""
    import plotly.graph_objects as go

    from harness.query import density

    groups, fits = density.families(board)
    out = []
    for key, (metric, fit) in sorted(fits.items()):
        rows = board[[g == key for g in groups]]
        rows = rows[rows["nonzero_params"].notna() & rows[metric].notna()]
        fig = go.Figure()
        xs, ys = density.curve_points(fit, metric)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"fitted dense curve ({fit.points} points)"))
        for name, part in rows.groupby("method", sort=True):
            hover = [f"{h}<br>capacity density {d:.3g}" if d == d else f"{h}<br>capacity density: none"
                     for h, d in zip(_hover(part), part.get("capacity_density", part[metric] * float("nan")))]
            fig.add_trace(go.Scatter(x=part["nonzero_params"].tolist(), y=part[metric].tolist(), mode="markers",
                                     name=str(name), hovertext=hover, hoverinfo="text+x+y",
                                     marker={"size": 9, "symbol": "diamond" if name == "dense" else "circle"}))
        arch, dataset, backend = key[0], key[1], key[2]
        fig.update_layout(title=f"{metric} against nonzero parameters: {arch} on {dataset}, {backend}",
                          xaxis_title="nonzero parameters", yaxis_title=metric, xaxis_type="log",
                          template="plotly_white", height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50})
        out.append((f"density-{arch}-{dataset}-{backend}", f"Capacity density: {arch} on {dataset} ({backend})",
                    fig, len(rows)))
    return out
