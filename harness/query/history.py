"""A cell's metric over runs: what ``harness history`` shows and the report charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.query.columns import column_name, convert_distinct, label, params_text
from harness.query.refs import SHORT, QueryError, check_tag, resolve_machine
from harness.store.check import open_readonly


def history(db: str | Path, metric: str, *, model: str | None = None, dataset: str | None = None,
            method: str | None = None, backend: str | None = None, machine: str | None = None,
            tag: str | None = None, batch_size: int | None = None) -> Any:
    """One row per (run, cell, metric column) of ``metric``, oldest run first, as a DataFrame.

    Filters take bare plugin names. ``machine`` is a hash prefix or ``all``; by default the
    machine of the latest run (values from different machines are not one series). ``tag``
    keeps runs with that tag. ``batch_size`` keeps one batch size of batched metrics.
    """
    import pandas as pd

    conn = open_readonly(db)
    try:
        known = [r[0] for r in conn.execute("SELECT DISTINCT metric FROM measurements ORDER BY metric")]
        if metric not in known:
            raise QueryError(f"--metric {metric!r}: no such metric in the leaderboard "
                             f"(metrics: {', '.join(known) or 'none'})")
        machine_hash = resolve_machine(conn, machine)
        where, args = ["res.metric = ?"], [metric]
        for key, value in (("model", model), ("dataset", dataset), ("method", method), ("backend", backend)):
            if value is not None:
                where.append(f"res.{key} = ?")
                args.append(value)
        if machine_hash is not None:
            where.append("res.machine_hash = ?")
            args.append(machine_hash)
        if tag is not None:
            where.append("res.tag = ?")
            args.append(check_tag(tag))
        if batch_size is not None:
            where.append("json_extract(res.params, '$.batch_size') = ?")
            args.append(batch_size)
        frame = pd.read_sql_query(
            "SELECT res.run_id, r.started_at, res.tag, res.machine_hash, res.model, res.model_params, res.dataset, "
            "res.dataset_params, res.method, res.method_params, res.seed, res.backend, res.backend_params, "
            "res.metric, res.params, res.value, res.flag FROM results res JOIN runs r ON r.id = res.run_id WHERE "
            + " AND ".join(where) + " ORDER BY r.started_at, res.run_id, res.cell_id", conn,
            params=args)
    finally:
        conn.close()
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    for kind in ("model", "dataset"):
        frame[kind] = convert_distinct(frame, [kind, f"{kind}_params"], label)
    for col in ("method_params", "backend_params"):
        frame[col] = convert_distinct(frame, [col], lambda s: params_text(json.loads(s)))
    frame["metric"] = convert_distinct(frame, ["metric", "params"], column_name)
    frame["machine"] = frame.pop("machine_hash").str[:SHORT]
    return frame[COLUMNS]


COLUMNS = ["run_id", "started_at", "tag", "machine", "model", "dataset", "method", "method_params", "seed",
           "backend", "backend_params", "metric", "value", "flag"]
