"""The tables of a studies report (mean ± std over seeds), each declared as a ``[[tables]]`` entry of a
findings file: its heading, its kind and the methods and metrics it names.

- ``sweep``: rows (model, backend, method); one column per value of the swept parameter ``sweep``,
  and the ``baseline`` method's value in its own column.
- ``configs``: ``metrics`` (``[name, digits]`` pairs) of the listed ``methods``, one row per configuration
  (``sweeps``: the swept parameters that tell configurations apart, default ``["bits"]``); ``drop`` names
  columns to leave out.
- ``speedup``: ``metric`` (a ratio to ``baseline``) per batch size beside the ``beside`` metric, for every
  method but the baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.query.refs import QueryError
from harness.report.findings import Stat, stat


def sweep_table(frame: Any, metric: str, key: str, baseline: str) -> Any:
    """Rows (model, backend, method); one column per value of ``key``; cells ``mean ± std``. The ``baseline``
    method is its own column. Returns a DataFrame (empty when no method sweeps ``key``)."""
    import pandas as pd

    rows = frame[frame["metric"] == metric]
    swept = rows[rows[key].notna()]
    if swept.empty:
        return pd.DataFrame()
    values = sorted(set(swept[key]))
    out = []
    for (model, backend, label), part in swept.groupby(["model", "backend", "label"], sort=True):
        base = stat(rows[(rows["model"] == model) & (rows["backend"] == backend)], metric, method=baseline)
        row = {"model": model, "backend": backend or "-", "method": label, baseline: base.text() if base else ""}
        for v in values:
            s = Stat.of(part[part[key] == v]["value"])
            row[f"{v:g}"] = s.text() if s else ""
        out.append(row)
    return pd.DataFrame(out)


def speedup_table(frame: Any, metric: str, beside: str, baseline: str, key: str = "sparsity") -> Any:
    """``metric`` (mean ± std over seeds) per batch size, with ``beside``, for every method timed on a backend
    but ``baseline``, one row per configuration (value of ``key``)."""
    import pandas as pd

    sp = frame[(frame["metric"] == metric) & (frame["method"] != baseline)]
    theory = frame[frame["metric"] == beside]
    out = []
    for (model, backend, label, value), part in sp.groupby(["model", "backend", "label", key], sort=True):
        row = {"model": model, "backend": backend, "method": label, key: f"{value:g}"}
        for bs in sorted(set(part["batch_size"].dropna())):
            s = Stat.of(part[part["batch_size"] == bs]["value"])
            row[f"{metric} b{int(bs)}"] = s.text(2) if s else ""
        t = Stat.of(theory[(theory["model"] == model) & (theory["label"] == label) &
                           (theory[key] == value)]["value"])
        row["theoretical"] = t.text(2) if t else ""
        out.append(row)
    return pd.DataFrame(out)


def configs_table(frame: Any, methods: Iterable[str], metrics: Iterable[tuple[str, int]],
                  sweeps: Iterable[str] = ("bits",)) -> Any:
    """``metrics`` (name, digits) of the given methods, one row per configuration (its label and the values of
    the ``sweeps`` parameters; mean ± std over seeds)."""
    import pandas as pd

    methods = set(methods)
    rows = frame[frame["method"].isin(methods)]
    out = []
    sweeps = list(sweeps)
    for (model, label, *values), part in rows.groupby(["model", "label", *sweeps], sort=True, dropna=False):
        row = {"model": model, "method": label}
        row.update({k: "" if v is None or v != v else f"{v:g}" for k, v in zip(sweeps, values)})
        for metric, digits in metrics:
            s = Stat.of(part[part["metric"] == metric]["value"])
            row[metric] = s.text(digits) if s else ""
        out.append(row)
    return pd.DataFrame(out)


#: Each kind's keys besides ``heading`` and ``kind``.
KINDS = {"sweep": ("metric", "sweep", "baseline"), "configs": ("methods", "metrics"),
         "speedup": ("metric", "beside", "baseline")}


def check_table(spec: dict, where: str) -> None:
    """Raise a :class:`QueryError` naming ``where`` unless ``spec`` is a complete table of a known kind."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise QueryError(f"{where}: table {spec.get('heading', '?')!r}: unknown kind {kind!r} (known: "
                         f"{', '.join(KINDS)})", file=where, key="tables")
    missing = [k for k in ("heading", *KINDS[kind]) if k not in spec]
    if missing:
        raise QueryError(f"{where}: table {spec.get('heading', '?')!r} ({kind}) needs {', '.join(missing)}",
                         file=where, key="tables")


def table(frame: Any, spec: dict) -> Any:
    """The table ``spec`` (one ``[[tables]]`` entry, checked by :func:`check_table`) of ``frame``."""
    kind = spec["kind"]
    if kind == "sweep":
        return sweep_table(frame, spec["metric"], spec["sweep"], spec["baseline"])
    if kind == "speedup":
        return speedup_table(frame, spec["metric"], spec["beside"], spec["baseline"])
    out = configs_table(frame, spec["methods"], [tuple(m) for m in spec["metrics"]], spec.get("sweeps", ("bits",)))
    return out.drop(columns=spec.get("drop", []), errors="ignore")
