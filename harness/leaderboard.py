"""Reading the leaderboard: long results, the wide latest-per-cell view, output formats.

Everything here opens the database read-only.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from harness.store import open_readonly

IDENTITY = ["model", "dataset", "method", "method_params", "seed", "backend", "backend_params"]
SUITE_ORDER = {"accuracy": 0, "latency": 1, "size": 2}


def _params_text(d: dict) -> str:
    if set(d) == {"steps"} and isinstance(d["steps"], list):  # a pipeline: each step's parameters, in order
        return " + ".join(f"{s['name']}({_params_text(s['params'])})" for s in d["steps"])
    return ",".join(f"{k}={v}" for k, v in sorted(d.items())) if d else ""


def results(db: str | Path, run_id: int | None = None) -> list[dict]:
    """One record per measurement, with its cell's identity; the latest run when ``run_id`` is None."""
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
        params = {**json.loads(r["method_params"]), "seed": r["seed"], **json.loads(r["params"])}
        out.append({
            "run_id": r["run_id"], "model": r["model"], "dataset": r["dataset"], "method": r["method"],
            "params": params, "backend": r["backend"], "backend_params": json.loads(r["backend_params"]),
            "suite": r["suite"], "metric": r["metric"], "value": r["value"], "unit": r["unit"],
        })
    return out


def runs(db: str | Path) -> list[dict]:
    """Runs with their cell counts by status."""
    conn = open_readonly(db)
    try:
        rows = conn.execute("""
            SELECT r.id, r.suite_name, r.status, r.started_at, r.finished_at, r.git_revision, r.machine_hash,
                   sum(c.status = 'ok') AS ok, sum(c.status = 'skipped') AS skipped,
                   sum(c.status = 'failed') AS failed
            FROM runs r LEFT JOIN cells c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id""").fetchall()
    finally:
        conn.close()
    return [dict(r) for r in rows]


def metric_directions(db: str | Path) -> dict[str, bool | None]:
    """``{metric: higher_is_better}`` from the metric catalogue."""
    conn = open_readonly(db)
    try:
        rows = conn.execute("SELECT name, higher_is_better FROM metrics").fetchall()
    finally:
        conn.close()
    return {r["name"]: None if r["higher_is_better"] is None else bool(r["higher_is_better"]) for r in rows}


def _label(name: str, params: str) -> str:
    text = _params_text(json.loads(params))
    return f"{name}({text})" if text else name


def _column(metric: str, mparams: str) -> str:
    extra = json.loads(mparams)
    bs = extra.pop("batch_size", None)
    suffix = f"@b{bs}" if bs is not None else ""
    return metric + suffix + "".join(f"@{k}={v}" for k, v in sorted(extra.items()))


def leaderboard(db: str | Path, *, model: str | None = None, dataset: str | None = None,
                backend: str | None = None, method: str | None = None, sort: str | None = None) -> Any:
    """The wide view: one row per (model, dataset, method + params, seed, backend), latest result per cell.

    Backend-independent metrics (size) appear on every backend's row of the same artifact.
    Metrics measured at several batch sizes become ``metric@bN`` columns. ``sort`` names a column,
    or a metric whose smallest-batch column (the single-stream one) is then used; the direction
    comes from the metric catalogue (best first). Returns a pandas DataFrame.
    """
    import pandas as pd

    conn = open_readonly(db)
    try:
        frame = pd.read_sql_query(
            "SELECT model, model_params, dataset, dataset_params, method, method_params, seed, backend, "
            "backend_params, suite, metric, value, params AS mparams FROM latest_results",
            conn)
    finally:
        conn.close()
    if frame.empty:
        return pd.DataFrame(columns=IDENTITY)
    frame["method_params"] = frame["method_params"].map(lambda s: _params_text(json.loads(s)))
    for kind in ("model", "dataset"):
        frame[kind] = [_label(n, p) for n, p in zip(frame[kind], frame[f"{kind}_params"])]
    frame["backend_params"] = frame["backend_params"].map(lambda s: _params_text(json.loads(s)))
    frame["column"] = [_column(m, p) for m, p in zip(frame["metric"], frame["mparams"])]
    order = {c: (SUITE_ORDER.get(s, 9), i) for i, (c, s) in enumerate(zip(frame["column"], frame["suite"]))}

    art_keys = ["model", "dataset", "method", "method_params", "seed"]
    per_backend = frame[frame["backend"].notna()]
    shared = frame[frame["backend"].isna()]
    wide = per_backend.pivot_table(index=art_keys + ["backend", "backend_params"], columns="column",
                                   values="value", aggfunc="first").reset_index()
    if not shared.empty:
        swide = shared.pivot_table(index=art_keys, columns="column", values="value",
                                   aggfunc="first").reset_index()
        if wide.empty:
            wide = swide.assign(backend=None, backend_params="")
        else:
            wide = wide.merge(swide, on=art_keys, how="left")
    wide.columns.name = None
    metric_cols = sorted([c for c in wide.columns if c not in IDENTITY], key=lambda c: order.get(c, (9, 0)))
    wide = wide[IDENTITY + metric_cols]
    for key, value in (("model", model), ("dataset", dataset), ("backend", backend), ("method", method)):
        if value is not None:
            wide = wide[wide[key] == value]
    if sort:
        col = resolve_column(sort, metric_cols)
        higher = metric_directions(db).get(col.split("@", 1)[0])
        wide = wide.sort_values(col, ascending=not higher, na_position="last")
    return wide.reset_index(drop=True)


def resolve_column(name: str, columns: list[str]) -> str:
    """A column named exactly ``name``, or the smallest-batch column of metric ``name``."""
    if name in columns:
        return name
    variants = [c for c in columns if c.split("@", 1)[0] == name]
    if not variants:
        raise KeyError(f"no column {name!r} in the leaderboard (columns: {', '.join(columns) or 'none'})")

    return min(variants, key=_batch_of)


#: Metrics shown by the table view unless ``--columns`` says otherwise (one per suite question).
HEADLINE = ("top1", "top1_delta", "p50_ms@b1", "p90_ms@b1", "throughput_sps", "weight_sparsity", "gzip_bytes",
            "theoretical_speedup")


def select_columns(frame: Any, columns: str | None) -> Any:
    """Keep the identity columns and ``columns`` (comma-separated names; ``all``; ``None``: the headline).

    A bare metric name that was measured at several batch sizes keeps every variant, except
    ``throughput_sps`` in the headline, which keeps the largest batch (the offline scenario).
    """
    if columns == "all":
        return frame
    metric_cols = [c for c in frame.columns if c not in IDENTITY]
    if columns is None:
        wanted: list[str] = []
        for name in HEADLINE:
            variants = [c for c in metric_cols if c == name or c.split("@", 1)[0] == name]
            if name == "throughput_sps" and variants:
                variants = [max(variants, key=_batch_of)]
            wanted += [c for c in variants if c not in wanted]
    else:
        wanted = []
        for name in (c.strip() for c in columns.split(",") if c.strip()):
            variants = [c for c in metric_cols if c == name or c.split("@", 1)[0] == name]
            if not variants:
                raise KeyError(f"no column {name!r} in the leaderboard (columns: {', '.join(metric_cols)})")
            wanted += [c for c in variants if c not in wanted]
    keep = [c for c in IDENTITY if c in frame.columns]
    if "backend_params" in keep and frame["backend_params"].nunique(dropna=False) <= 1:
        keep.remove("backend_params")
    return frame[keep + wanted]


def _batch_of(column: str) -> int:
    for part in column.split("@")[1:]:
        if part.startswith("b") and part[1:].isdigit():
            return int(part[1:])
    return 0


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
        return frame.to_markdown(index=False, floatfmt=".4g")
    if fmt == "table":
        return _table(frame)
    raise ValueError(f"unknown format {fmt!r}")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return _params_text(v)
    return str(v)


def _table(frame: Any) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for c in frame.columns:
        table.add_column(str(c), no_wrap=c in IDENTITY, overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_fmt(v) for v in row))
    console = Console(width=1000, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()
