"""``harness report``: one self-contained HTML file with the leaderboard, Pareto plots, capacity-density
curves (a dense family's fitted accuracy against parameters, with the compressed models beside it) and
history charts.

Plots are plotly figures with plotly.js inlined once (no network when the file is viewed); each
point's hover text names the model, method and parameters. The leaderboard and the plots use
one machine (the latest run's by default), so latency of different machines is never mixed.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any

from harness.query.refs import QueryError

ACCURACY = "top1"
LATENCY = "p50_ms"
SIZE = "gzip_bytes"


def _hover(frame: Any) -> list[str]:
    out = []
    for r in frame.itertuples(index=False):
        params = f"({r.method_params})" if r.method_params else ""
        flags = f"<br>flagged: {html.escape(str(r.flags))}" if isinstance(r.flags, str) and r.flags else ""
        out.append(f"{html.escape(str(r.model))} / {html.escape(str(r.method))}{html.escape(params)} / "
                   f"{html.escape(str(r.backend))}{flags}")
    return out


def _scatter_figure(frame: Any, x: str, y: str, *, x_max: bool, y_max: bool, title: str, by: str | None) -> Any:
    """A Pareto scatter: frontier (joined), other ranked entries and flagged entries as separate traces."""
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
                                     marker={"symbol": symbol, "size": 9}, hovertext=_hover(part),
                                     hoverinfo="text+x+y"))
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white", height=420,
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig, len(points)


def _history_figure(frame: Any, title: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for key, group in frame.groupby(["model", "method", "method_params", "backend", "metric"], sort=True,
                                    dropna=False):
        model, method, mparams, backend, metric = key
        name = f"{model} / {method}{f'({mparams})' if mparams else ''} / {backend or '-'}"
        fig.add_trace(go.Scatter(x=[f"run {r}" for r in group["run_id"]], y=group["value"].tolist(),
                                 mode="lines+markers", name=name, hovertext=[name] * len(group),
                                 hoverinfo="text+x+y"))
    fig.update_layout(title=title, template="plotly_white", height=420, xaxis_type="category",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig, len(frame)


def _density_figures(board: Any) -> list[tuple[str, str, Any, int]]:
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


def build_report(db: str | Path, *, machine: str | None = None) -> str:
    """The report's HTML text."""
    from harness.query.columns import metric_columns, resolve_column
    from harness.query.history import history
    from harness.query.leaderboard import leaderboard, rank, read_catalogue, runs, select_columns

    board = leaderboard(db, machine=machine)
    metric_cols = metric_columns(board)
    sections: list[tuple[str, str, Any, int]] = []  # (id, heading, figure, points)

    def column(name: str) -> str | None:
        try:
            return resolve_column(name, list(metric_cols))
        except QueryError:
            return None

    acc, lat, size = column(ACCURACY), column(LATENCY), column(SIZE)
    if acc and lat:
        for backend, group in board[board["backend"].notna()].groupby("backend", sort=True):
            fig, n = _scatter_figure(group, lat, acc, x_max=False, y_max=True, by=None,
                                     title=f"{acc} against {lat} on {backend}")
            sections.append((f"pareto-latency-{backend}", f"Accuracy against latency: {backend}", fig, n))
    if acc and size:
        fig, n = _scatter_figure(board, size, acc, x_max=False, y_max=True, by="backend",
                                 title=f"{acc} against {size} (one frontier per backend)")
        sections.append(("pareto-size", "Accuracy against size", fig, n))
    sections += _density_figures(board)
    for metric, batch, heading in ((LATENCY, 1, "History: median latency at batch 1"),
                                   (ACCURACY, None, "History: top-1 accuracy")):
        try:
            hist = history(db, metric, machine=machine, batch_size=batch)
        except QueryError:  # a metric nobody measured has no chart
            continue
        if len(hist):
            fig, n = _history_figure(hist, heading)
            sections.append((f"history-{metric}", heading, fig, n))

    table = board
    if acc:
        table = rank(board, acc, higher=True, catalogue=read_catalogue(db))
    shown = select_columns(table, None)
    run_rows = runs(db)
    parts = [_HEAD.format(generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                          db=html.escape(str(db)), machine=html.escape(", ".join(sorted(set(board["machine"])))
                                                                      if len(board) else "-"),
                          runs=len(run_rows))]
    parts.append("<h2>Leaderboard</h2><p>Latest result of every cell"
                 + (f", ranked by {html.escape(acc)}" if acc else "") + ". Flagged rows failed a gate: they are "
                 "shown, never ranked, and never on a frontier.</p>")
    parts.append(shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", classes="board",
                               border=0, escape=True))
    first = True
    for div_id, heading, fig, n in sections:
        parts.append(f'<section class="plot" data-points="{n}"><h2>{html.escape(heading)}</h2>')
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first, div_id=div_id,
                                 config={"displaylogo": False}))
        parts.append("</section>")
        first = False
    parts.append("<h2>Runs</h2>")
    import pandas as pd

    parts.append(pd.DataFrame(run_rows).to_html(index=False, na_rep="", border=0, classes="runs"))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(db: str | Path, output: str | Path, *, machine: str | None = None) -> Path:
    """Write the report to ``output`` (folders created); returns its path."""
    text = build_report(db, machine=machine)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>harness report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }}
section.plot {{ margin-top: 2em; }}
</style></head><body>
<h1>harness report</h1>
<p>Generated {generated} from <code>{db}</code> ({runs} runs); machine {machine}.</p>
"""
