"""Comparing two runs: every cell and metric, with the test behind each verdict.

A change is a **regression** only when it is all of: in the wrong direction (the metric
catalogue's ``higher_is_better``), beyond the threshold (5% by default), beyond the cell's noise
floor learned from history, and significant:

- metrics with raw samples (latency: ``p50_ms`` and the statistics computed from the same samples)
  are tested with the Mann-Whitney U test on the two runs' samples, and the p-values are adjusted
  for the number of tests (Benjamini-Hochberg), so that ten thousand cells do not yield hundreds of
  false alarms; tests are run only for changes beyond the threshold (as asv does), the others count
  as p = 1 in the adjustment, which keeps it conservative;
- metrics without samples (accuracy, size) are deterministic for a fixed seed: any change is
  real, and the threshold alone decides.

The noise floor of a (cell, metric) is learned from the values it had in earlier runs on the same
machine: ``sigmas`` standard deviations of its run-to-run change, estimated robustly from the
median absolute change between consecutive runs (a single earlier step does not inflate it).
Changes are relative, except for metrics in ``fraction`` units (accuracy), which change by
absolute points, and values that are zero or negative, where a ratio means nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.query.columns import column_name, convert_distinct, label, params_text
from harness.query.refs import QueryError, describe_machine, resolve_run
from harness.store.db import open_readonly

#: Consecutive-change statistics need at least this many earlier values to learn a noise floor.
MIN_HISTORY = 4
_Z_MAD = 0.6744897501960817  # median of |N(0, 1)|


class MachineMismatch(QueryError):
    """BASE and NEW were measured on machines with different fingerprints."""


@dataclass
class Comparison:
    """The result of :func:`compare_runs`: one row per (cell, metric) present in both runs."""

    base: dict
    new: dict
    rows: Any
    threshold: float
    alpha: float
    only_base: int
    only_new: int
    forced_across_machines: bool = False

    def count(self, verdict: str) -> int:
        """How many rows have this verdict."""
        return int((self.rows["verdict"] == verdict).sum()) if len(self.rows) else 0

    @property
    def exit_code(self) -> int:
        """1 when a significant regression beyond the threshold was found, else 0 (for CI)."""
        return 1 if self.count("regression") else 0

    def summary(self) -> str:
        """One paragraph for people: what was compared and what was found."""
        cells = self.rows["cell_key"].nunique() if len(self.rows) else 0
        lines = [f"compared run {self.base['id']} (base) with run {self.new['id']} (new): {cells} cells, "
                 f"{len(self.rows)} metrics; threshold {self.threshold:.3g}, alpha {self.alpha:g} "
                 f"(Benjamini-Hochberg adjusted)",
                 f"{self.count('regression')} regressions, {self.count('improvement')} improvements, "
                 f"{self.count('changed')} changed without a direction, {self.count('ok')} within threshold, "
                 f"noise or significance"]
        if self.only_base or self.only_new:
            lines.append(f"{self.only_base} cells only in the base run, {self.only_new} only in the new run "
                         f"(not compared)")
        if self.forced_across_machines:
            lines.append(f"forced across machines: base {describe_machine(self.base)}, new "
                         f"{describe_machine(self.new)}; latency changes may be the machine's")
        return "\n".join(lines)

    def listing(self, show_all: bool = False) -> Any:
        """The rows to show: everything but ``ok`` (or all of them), worst first."""
        rows = self.rows if show_all else self.rows[self.rows["verdict"] != "ok"]
        order = {"regression": 0, "improvement": 1, "changed": 2, "ok": 3, "no value": 4}
        rows = rows.assign(_o=rows["verdict"].map(order), _m=-rows["change"].abs())
        rows = rows.sort_values(["_o", "_m", "model", "method", "method_params", "backend", "metric"],
                                kind="stable")
        return rows[DISPLAY].reset_index(drop=True)


DISPLAY = ["verdict", "model", "dataset", "method", "method_params", "seed", "backend", "backend_params",
           "metric", "base", "new", "change", "change_kind", "test", "p_value", "q_value", "noise_floor", "flag",
           "why"]


def _load(conn: Any, run_id: int, identity: bool) -> Any:
    import pandas as pd

    # The long rows carry the cell id only; the cell's identity is read once per cell and joined (ten
    # thousand cells, not a hundred thousand rows of repeated strings fetched through Python tuples).
    frame = pd.read_sql_query(
        "SELECT c.cell_key, m.cell_id, m.metric, m.params, m.value, m.unit, m.sample_set_id, m.flag "
        "FROM cells c JOIN measurements m ON m.cell_id = c.id WHERE c.run_id = ? AND c.status = 'ok'",
        conn, params=[run_id])
    if identity:
        cells = pd.read_sql_query(
            "SELECT id AS cell_id, model, model_params, dataset, dataset_params, method, method_params, seed, backend, "
            "backend_params FROM cells WHERE run_id = ? AND status = 'ok'", conn, params=[run_id])
        frame = cells.merge(frame, on="cell_id", how="right")
    # Statistics computed from a cell's raw samples (p90, mean, throughput...) share that sample set.
    frame["samples_id"] = frame.groupby(["cell_id", "params"])["sample_set_id"].transform("max")
    return frame


def compare_runs(db: str | Path, base_ref: str, new_ref: str, *, threshold: float = 0.05, alpha: float = 0.01,
                 force: bool = False, metrics: list[str] | None = None, history: int = 10,
                 sigmas: float = 3.0) -> Comparison:
    """Compare run ``new_ref`` against run ``base_ref`` (ids, ``latest``, ``previous`` or tags).

    Raises :class:`MachineMismatch` when the runs' machine fingerprints differ and ``force`` is
    false, and :class:`harness.query.refs.QueryError` for unknown runs, metrics or bad settings.
    """
    import numpy as np
    import pandas as pd

    if not threshold >= 0:
        raise QueryError(f"--threshold {threshold!r}: must be a fraction >= 0 (0.05 is 5%)")
    if not 0 < alpha < 1:
        raise QueryError(f"--alpha {alpha!r}: must be between 0 and 1")
    if history < MIN_HISTORY - 1 and history != 0:
        raise QueryError(f"--history {history!r}: give 0 (no noise floor) or at least {MIN_HISTORY - 1} runs")
    conn = open_readonly(db)
    try:
        new = resolve_run(conn, new_ref)
        base = resolve_run(conn, base_ref, before=new)
        if base["id"] == new["id"]:
            raise QueryError(f"BASE {base_ref!r} and NEW {new_ref!r} are the same run ({new['id']})")
        across = base["machine_hash"] != new["machine_hash"]
        if across and not force:
            raise MachineMismatch(
                f"run {base['id']} was measured on machine {describe_machine(base)} and run {new['id']} on "
                f"{describe_machine(new)}: latency from different machines is not comparable. Compare runs of "
                f"one machine, or pass --force to compare anyway")
        directions = {r[0]: (None if r[1] is None else bool(r[1]))
                      for r in conn.execute("SELECT name, higher_is_better FROM metrics")}
        b = _load(conn, base["id"], identity=False)
        n = _load(conn, new["id"], identity=True)
        if metrics:
            known = set(b["metric"]) | set(n["metric"])
            unknown = [m for m in metrics if m not in known]
            if unknown:
                raise QueryError(f"--metric {', '.join(unknown)}: not measured in these runs "
                                 f"(metrics: {', '.join(sorted(known))})")
            b, n = b[b["metric"].isin(metrics)], n[n["metric"].isin(metrics)]
        keys = ["cell_key", "metric", "params"]
        rows = n.merge(b[keys + ["value", "samples_id"]], on=keys, how="inner", suffixes=("_new", "_base"))
        only_base = len(set(b["cell_key"]) - set(n["cell_key"]))
        only_new = len(set(n["cell_key"]) - set(b["cell_key"]))
        rows = rows.rename(columns={"value_new": "new", "value_base": "base"})
        rows["direction"] = rows["metric"].map(directions)
        _changes(rows)
        candidates = (rows["change"].abs() > threshold).to_numpy()
        _significance(conn, rows, candidates)
        # The floor can only turn a significant change beyond the threshold into noise, so it is
        # learned for those rows only (history of every cell would cost a scan of every run).
        passed = candidates & ~((rows["test"] == "mann-whitney-u") & ~(rows["q_value"] < alpha)).to_numpy()
        floors = _noise_floors(conn, rows[passed], new, history, sigmas) if history else {}
    finally:
        conn.close()
    rows["noise_floor"] = [floors.get((k, m, p), np.nan) if c else np.nan
                           for k, m, p, c in zip(rows["cell_key"], rows["metric"], rows["params"], passed)]
    _verdicts(rows, candidates, threshold, alpha)
    rows["metric"] = convert_distinct(rows, ["metric", "params"], column_name)
    for col in ("method_params", "backend_params"):
        rows[col] = convert_distinct(rows, [col], lambda s: params_text(json.loads(s)))
    for kind in ("model", "dataset"):
        rows[kind] = convert_distinct(rows, [kind, f"{kind}_params"], label)
    return Comparison(base=base, new=new, rows=pd.DataFrame(rows), threshold=threshold, alpha=alpha,
                      only_base=only_base, only_new=only_new, forced_across_machines=across)


def _changes(rows: Any) -> None:
    """Signed change of each row: relative, or absolute for fractions and non-positive bases."""
    import numpy as np

    base, new = rows["base"].to_numpy(dtype=float), rows["new"].to_numpy(dtype=float)
    absolute = (rows["unit"] == "fraction").to_numpy() | ~(base > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = new / base - 1.0
    rows["change"] = np.where(absolute, new - base, rel)
    rows["change_kind"] = np.where(absolute, "absolute", "relative")


def _samples(conn: Any, ids: set) -> dict[int, Any]:
    import numpy as np

    if not ids:
        return {}
    found = conn.execute("SELECT id, samples FROM sample_sets WHERE id IN (SELECT value FROM json_each(?))",
                         [json.dumps(sorted(int(i) for i in ids))]).fetchall()
    return {int(i): np.asarray(json.loads(s), dtype=float) for i, s in found}


def _significance(conn: Any, rows: Any, candidates: Any) -> None:
    """p-values (Mann-Whitney U on raw samples) for candidate rows, q-values adjusted over every test."""
    import numpy as np
    from scipy.stats import false_discovery_control, mannwhitneyu

    sampled = rows["samples_id_new"].notna() & rows["samples_id_base"].notna()
    rows["test"] = np.where(sampled, "mann-whitney-u", "deterministic")
    pairs = list(zip(rows["samples_id_base"], rows["samples_id_new"]))
    every_test = {p for p, s in zip(pairs, sampled) if s}
    wanted = {p for p, s, c in zip(pairs, sampled, candidates) if s and c}
    data = _samples(conn, {i for pair in wanted for i in pair})
    pvalue: dict = {}
    # One vectorised call per shape (sample counts of base and new) instead of one call per pair.
    by_shape: dict = {}
    for pair in wanted:
        x, y = data.get(int(pair[0])), data.get(int(pair[1]))
        if x is None or y is None or len(x) < 2 or len(y) < 2:
            pvalue[pair] = math.nan
        else:
            by_shape.setdefault((len(x), len(y)), []).append((pair, x, y))
    for items in by_shape.values():
        xs = np.stack([x for _, x, _ in items])
        ys = np.stack([y for _, _, y in items])
        ps = np.atleast_1d(mannwhitneyu(xs, ys, alternative="two-sided", axis=1).pvalue)
        pvalue.update({pair: float(p) for (pair, _, _), p in zip(items, ps)})
    # Benjamini-Hochberg over every sample test; the ones not run (within threshold) count as p = 1.
    tested = sorted(pvalue)
    qvalue: dict = {}
    if tested:
        ps = np.ones(len(every_test))
        ps[:len(tested)] = [1.0 if math.isnan(pvalue[t]) else pvalue[t] for t in tested]
        qs = false_discovery_control(ps, method="bh")
        qvalue = {t: float(q) for t, q in zip(tested, qs[:len(tested)])}
    rows["p_value"] = [pvalue.get(p, np.nan) if s else np.nan for p, s in zip(pairs, sampled)]
    rows["q_value"] = [qvalue.get(p, np.nan) if s else np.nan for p, s in zip(pairs, sampled)]


def _noise_floors(conn: Any, rows: Any, new: dict, history: int, sigmas: float) -> dict:
    """``{(cell_key, metric, params): floor}`` from the rows' values in earlier runs on NEW's machine."""
    import numpy as np
    import pandas as pd

    if rows.empty:
        return {}
    hist = pd.read_sql_query(
        "SELECT c.cell_key, m.metric, m.params, m.value, m.unit, r.started_at, r.id AS run_id "
        "FROM cells c JOIN runs r ON r.id = c.run_id JOIN measurements m ON m.cell_id = c.id "
        "WHERE c.status = 'ok' AND r.machine_hash = ? AND r.id != ? AND r.started_at <= ? "
        "AND c.cell_key IN (SELECT value FROM json_each(?)) AND m.metric IN (SELECT value FROM json_each(?))",
        conn, params=[new["machine_hash"], new["id"], new["started_at"],
                      json.dumps(sorted(set(rows["cell_key"]))), json.dumps(sorted(set(rows["metric"])))])
    wanted = set(zip(rows["cell_key"], rows["metric"], rows["params"]))
    floors = {}
    hist = hist.sort_values(["started_at", "run_id"])
    for key, group in hist.groupby(["cell_key", "metric", "params"], sort=False):
        if key not in wanted:
            continue
        values = group["value"].dropna().to_numpy(dtype=float)[-history:]
        if len(values) < MIN_HISTORY:
            continue
        prev, cur = values[:-1], values[1:]
        if group["unit"].iloc[0] == "fraction" or not (prev > 0).all():
            steps = cur - prev
        else:
            steps = cur / prev - 1.0
        floors[key] = float(sigmas * np.median(np.abs(steps)) / _Z_MAD)
    return floors


def _verdicts(rows: Any, candidates: Any, threshold: float, alpha: float) -> None:
    verdicts, whys = [], []
    for cand, change, direction, test, q, floor, base, new in zip(
            candidates, rows["change"], rows["direction"], rows["test"], rows["q_value"], rows["noise_floor"],
            rows["base"], rows["new"]):
        if base != base or new != new:
            verdicts.append("no value")
            whys.append("a value is missing")
            continue
        if not cand:
            verdicts.append("ok")
            whys.append(f"within threshold {threshold:.3g}")
            continue
        if test == "mann-whitney-u" and not (q < alpha):
            verdicts.append("ok")
            whys.append(f"not significant (q={q:.3g} >= {alpha:g})" if q == q else "too few samples to test")
            continue
        if floor == floor and abs(change) <= floor:
            verdicts.append("ok")
            whys.append(f"within the noise floor {floor:.3g} learned from history")
            continue
        if direction is None or direction != direction:
            verdicts.append("changed")
            whys.append("changed; the metric has no better direction")
            continue
        better = (change > 0) == bool(direction)
        verdicts.append("improvement" if better else "regression")
        basis = "significant" if test == "mann-whitney-u" else "deterministic metric"
        noise = f", noise floor {floor:.3g}" if floor == floor else ", no history for a noise floor"
        whys.append(f"{basis}, beyond threshold {threshold:.3g}{noise}")
    rows["verdict"] = verdicts
    rows["why"] = whys
