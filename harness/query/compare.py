"""Comparing two runs: every cell and metric, with the test that fits each metric (docs/compare.md).

A change is a **regression** only when it is all of: in the wrong direction (the metric
catalogue's ``higher_is_better``), beyond the threshold (5% by default), and, for timing metrics,
significant against the noise between runs:

- **timing** metrics (latency: ``p50_ms`` and the statistics computed from the same raw samples)
  vary from run to run, so the run or the process is the unit of variation, never the raw sample
  (:mod:`harness.query.noise`): Welch's t-test on per-process values when both runs timed the cell
  in several processes, else the new value against the cell's values in earlier runs on the same
  machine (a prediction interval); without either the change is ``untested``, never a regression.
  p-values are adjusted for the number of tests (Benjamini-Hochberg); tests are run only for
  changes beyond the threshold (as asv does), the others count as p = 1, which keeps it conservative;
- an **unstable** measurement (coefficient of variation above 10% in either run, pyperf's rule) is
  discounted: its change must also clear the threshold widened by both medians' 95% confidence
  intervals (order statistics), else it is reported as ``unstable`` and does not count;
- **dispersion** metrics (``stdev_ms``, MAD, CV) are reported and never flagged by default: a
  noisier night is not a slower one;
- metrics without samples (accuracy, size) are **deterministic** for a fixed seed: any change is
  real, and the threshold alone decides.

A cell that failed (or was missing) in the base run is compared against the last earlier run on the
new run's machine where it succeeded; the ``base_run`` column and the summary say which.
Changes are relative, except for metrics in ``fraction`` units (accuracy), which change by
absolute points, and values that are zero or negative, where a ratio means nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.query import noise
from harness.query.columns import column_name, convert_distinct, label, params_text
from harness.query.refs import QueryError, describe_machine, resolve_run
from harness.store.check import open_readonly

#: Earlier runs of a cell needed for the history test (re-exported from :mod:`harness.query.noise`).
MIN_HISTORY = noise.MIN_HISTORY


class MachineMismatch(QueryError):
    """BASE and NEW were measured on machines with different fingerprints."""


VERDICTS = ("regression", "improvement", "changed", "unstable", "untested", "ok", "no value")


@dataclass
class Comparison:
    """The result of :func:`compare_runs`: one row per (cell, metric) present in both runs (or in the new
    run and the last earlier run where the cell succeeded)."""

    base: dict
    new: dict
    rows: Any
    threshold: float
    alpha: float
    only_base: int
    only_new: int
    forced_across_machines: bool = False
    #: ``{run id: cells}`` compared against an earlier run because they failed or were missing in BASE.
    fallback: dict = field(default_factory=dict)

    def count(self, verdict: str) -> int:
        """How many rows have this verdict."""
        return int((self.rows["verdict"] == verdict).sum()) if len(self.rows) else 0

    @property
    def exit_code(self) -> int:
        """1 when a significant regression beyond the threshold was found, else 0 (for CI)."""
        return 1 if self.count("regression") else 0

    def summary(self) -> str:
        """One paragraph for people: what was compared, what was found, and what was discounted."""
        cells = self.rows["cell_key"].nunique() if len(self.rows) else 0
        lines = [f"compared run {self.base['id']} (base) with run {self.new['id']} (new): {cells} cells, "
                 f"{len(self.rows)} metrics; threshold {self.threshold:.3g}, alpha {self.alpha:g} "
                 f"(Benjamini-Hochberg adjusted; the run or process is the unit of variation)",
                 f"{self.count('regression')} regressions, {self.count('improvement')} improvements, "
                 f"{self.count('changed')} changed without a direction, {self.count('ok')} within threshold, "
                 f"noise or significance"]
        if self.count("unstable"):
            lines.append(f"{self.count('unstable')} changes discounted as unstable (coefficient of variation over "
                         f"{noise.UNSTABLE_CV:.0%} in a run, pyperf's rule) and within the threshold widened by the "
                         f"medians' 95% intervals: not counted; rerun on a quiet machine")
        if self.count("untested"):
            lines.append(f"{self.count('untested')} timing changes beyond the threshold untested: no noise estimate "
                         f"between runs (needs {noise.MIN_HISTORY} earlier runs of the cell on this machine, or "
                         f"processes >= {noise.MIN_PROCESSES}); not counted")
        for run_id, n in sorted(self.fallback.items()):
            lines.append(f"{n} cells failed or missing in run {self.base['id']}: compared against run {run_id}, "
                         f"the last run where they succeeded")
        if self.only_base:
            lines.append(f"{self.only_base} cells only in the base run (not compared)")
        if self.only_new:
            lines.append(f"{self.only_new} cells only in the new run: no earlier success on this machine "
                         f"(not compared)")
        if self.forced_across_machines:
            lines.append(f"forced across machines: base {describe_machine(self.base)}, new "
                         f"{describe_machine(self.new)}; latency changes may be the machine's")
        return "\n".join(lines)

    def listing(self, show_all: bool = False) -> Any:
        """The rows to show: everything but ``ok`` (or all of them), worst first."""
        rows = self.rows if show_all else self.rows[self.rows["verdict"] != "ok"]
        order = {v: i for i, v in enumerate(VERDICTS)}
        rows = rows.assign(_o=rows["verdict"].map(order), _m=-rows["change"].abs())
        rows = rows.sort_values(["_o", "_m", "model", "method", "method_params", "backend", "metric"],
                                kind="stable")
        return rows[DISPLAY].reset_index(drop=True)


DISPLAY = ["verdict", "model", "dataset", "method", "method_params", "seed", "backend", "backend_params",
           "metric", "base_run", "base", "new", "change", "change_kind", "test", "p_value", "q_value", "flag", "why"]

# The statistics of a sample set are read from the measurement that holds the samples (p50_ms) only:
# the others of the same cell and batch size share them (see _finish), and JSON is parsed once per set.
_STATS = "CASE WHEN m.sample_set_id IS NOT NULL THEN json_extract(m.stats, '{}') END"
_COLUMNS = ("c.cell_key, m.cell_id, m.metric, m.params, m.value, m.unit, m.sample_set_id, m.flag, "
            f"{_STATS.format('$.cv')} AS cv, {_STATS.format('$.per_process')} AS per_process, "
            f"({_STATS.format('$.ci95_median_ms[1]')} - {_STATS.format('$.ci95_median_ms[0]')}) / 2 / "
            f"{_STATS.format('$.median_ms')} AS ci_rel, "
            f"({_STATS.format('$.ci95_p10_ms[1]')} - {_STATS.format('$.ci95_p10_ms[0]')}) / 2 / "
            f"{_STATS.format('$.p10_ms')} AS ci10_rel, {_STATS.format('$.cpu.cv')} AS cpu_cv, "
            f"({_STATS.format('$.cpu.ci95_median_ms[1]')} - {_STATS.format('$.cpu.ci95_median_ms[0]')}) / 2 / "
            f"{_STATS.format('$.cpu.median_ms')} AS cpu_ci_rel, c.run_id AS base_run")
_IDENTITY = ("c.model, c.model_params, c.dataset, c.dataset_params, c.method, c.method_params, c.seed, c.backend, "
             "c.backend_params, ")


def _finish(frame: Any) -> Any:
    # Statistics computed from a cell's raw samples (p90, mean, throughput...) share that sample set,
    # its coefficient of variation and its per-process values.
    groups = frame.groupby(["cell_id", "params"])
    frame["samples_id"] = groups["sample_set_id"].transform("max")
    frame["cv"] = groups["cv"].transform("max")
    frame["ci_rel"] = groups["ci_rel"].transform("max")
    # p10_ms is discounted by its own interval where the run recorded it, the others by the median's.
    ci10 = groups["ci10_rel"].transform("max")
    frame["ci_rel"] = frame["ci_rel"].where(~((frame["metric"] == "p10_ms") & ci10.notna()), ci10)
    # cpu_ms has samples of its own (CPU time per call): their CV and median interval, not the wall clock's.
    cpu = frame["metric"] == "cpu_ms"
    frame["cv"] = frame["cv"].where(~cpu, groups["cpu_cv"].transform("max"))
    frame["ci_rel"] = frame["ci_rel"].where(~cpu, groups["cpu_ci_rel"].transform("max"))
    frame["per_process"] = groups["per_process"].transform("first")
    return frame.drop(columns=["ci10_rel", "cpu_cv", "cpu_ci_rel"])


def _load(conn: Any, run_id: int, identity: bool) -> Any:
    import pandas as pd

    frame = pd.read_sql_query(
        f"SELECT {_IDENTITY if identity else ''}{_COLUMNS} FROM cells c JOIN measurements m ON m.cell_id = c.id "
        "WHERE c.run_id = ? AND c.status = 'ok'", conn, params=[run_id])
    return _finish(frame)


def _last_success(conn: Any, keys: set, new: dict) -> Any:
    """The measurements of each cell in ``keys`` from the last earlier run on NEW's machine where it succeeded."""
    import pandas as pd

    frame = pd.read_sql_query(
        f"SELECT {_COLUMNS} FROM cells c JOIN measurements m ON m.cell_id = c.id WHERE c.id IN ("
        "SELECT (SELECT c2.id FROM cells c2 JOIN runs r2 ON r2.id = c2.run_id WHERE c2.cell_key = k.value "
        "AND c2.status = 'ok' AND r2.machine_hash = ? AND r2.id != ? AND (r2.started_at < ? OR "
        "(r2.started_at = ? AND r2.id < ?)) ORDER BY r2.started_at DESC, r2.id DESC LIMIT 1) "
        "FROM json_each(?) k)", conn,
        params=[new["machine_hash"], new["id"], new["started_at"], new["started_at"], new["id"],
                json.dumps(sorted(keys))])
    return _finish(frame)


def compare_runs(db: str | Path, base_ref: str, new_ref: str, *, threshold: float = 0.05, alpha: float = 0.01,
                 force: bool = False, metrics: list[str] | None = None, history: int = 10,
                 keep_unstable: bool = False, test_dispersion: bool = False) -> Comparison:
    """Compare run ``new_ref`` against run ``base_ref`` (ids, ``latest``, ``previous`` or tags).

    ``history`` earlier runs of a cell on NEW's machine (0: none) give the noise between runs where
    the runs have no per-process values; ``keep_unstable`` counts unstable measurements' changes;
    ``test_dispersion`` tests stdev and the like as timing metrics. Raises :class:`MachineMismatch`
    when the runs' machine fingerprints differ and ``force`` is false, and
    :class:`harness.query.refs.QueryError` for unknown runs, metrics or bad settings.
    """
    import pandas as pd

    if not threshold >= 0:
        raise QueryError(f"--threshold {threshold!r}: must be a fraction >= 0 (0.05 is 5%)")
    if not 0 < alpha < 1:
        raise QueryError(f"--alpha {alpha!r}: must be between 0 and 1")
    if history < MIN_HISTORY and history != 0:
        raise QueryError(f"--history {history!r}: give 0 (no history test) or at least {MIN_HISTORY} runs")
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
        missing = set(n["cell_key"]) - set(b["cell_key"])
        if missing:
            b = pd.concat([b, _last_success(conn, missing, new)], ignore_index=True)
        if metrics:
            known = set(b["metric"]) | set(n["metric"])
            unknown = [m for m in metrics if m not in known]
            if unknown:
                raise QueryError(f"--metric {', '.join(unknown)}: not measured in these runs "
                                 f"(metrics: {', '.join(sorted(known))})")
            b, n = b[b["metric"].isin(metrics)], n[n["metric"].isin(metrics)]
        keys = ["cell_key", "metric", "params"]
        rows = n.drop(columns=["base_run"]).merge(
            b[keys + ["value", "samples_id", "cv", "ci_rel", "per_process", "base_run"]], on=keys, how="inner",
            suffixes=("_new", "_base"))
        in_base = set(b.loc[b["base_run"] == base["id"], "cell_key"])
        only_base = len(in_base - set(n["cell_key"]))
        only_new = len(set(n["cell_key"]) - set(b["cell_key"]))
        fell_back = b[b["base_run"] != base["id"]].drop_duplicates("cell_key")
        fallback = {int(r): int(c) for r, c in fell_back.groupby("base_run")["cell_key"].nunique().items()}
        rows = rows.rename(columns={"value_new": "new", "value_base": "base"})
        rows["direction"] = rows["metric"].map(directions)
        rows["kind"] = [noise.kind(m, bool(a == a and c == c), test_dispersion, u) for m, a, c, u in
                        zip(rows["metric"], rows["samples_id_new"], rows["samples_id_base"], rows["unit"])]
        _changes(rows)
        candidates = (rows["change"].abs() > threshold).to_numpy()
        earlier = _history(conn, rows[candidates & (rows["kind"] == "timing").to_numpy()], new, history) \
            if history else {}
    finally:
        conn.close()
    _significance(rows, candidates, earlier)
    _verdicts(rows, candidates, threshold, alpha, keep_unstable)
    rows["metric"] = convert_distinct(rows, ["metric", "params"], column_name)
    for col in ("method_params", "backend_params"):
        rows[col] = convert_distinct(rows, [col], lambda s: params_text(json.loads(s)))
    for kind in ("model", "dataset"):
        rows[kind] = convert_distinct(rows, [kind, f"{kind}_params"], label)
    return Comparison(base=base, new=new, rows=pd.DataFrame(rows), threshold=threshold, alpha=alpha,
                      only_base=only_base, only_new=only_new, forced_across_machines=across, fallback=fallback)


def _changes(rows: Any) -> None:
    """Signed change of each row: relative, or absolute for fractions and non-positive bases."""
    import numpy as np

    base, new = rows["base"].to_numpy(dtype=float), rows["new"].to_numpy(dtype=float)
    absolute = (rows["unit"] == "fraction").to_numpy() | ~(base > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = new / base - 1.0
    rows["change"] = np.where(absolute, new - base, rel)
    rows["change_kind"] = np.where(absolute, "absolute", "relative")


def _history(conn: Any, rows: Any, new: dict, history: int) -> dict:
    """``{(cell_key, metric, params): values}`` of the rows in up to ``history`` earlier runs on NEW's machine
    (the base run among them), oldest first."""
    import pandas as pd

    if rows.empty:
        return {}
    hist = pd.read_sql_query(
        "SELECT c.cell_key, m.metric, m.params, m.value, r.started_at, r.id AS run_id "
        "FROM cells c JOIN runs r ON r.id = c.run_id JOIN measurements m ON m.cell_id = c.id "
        "WHERE c.status = 'ok' AND r.machine_hash = ? AND r.id != ? AND r.started_at <= ? "
        "AND c.cell_key IN (SELECT value FROM json_each(?)) AND m.metric IN (SELECT value FROM json_each(?))",
        conn, params=[new["machine_hash"], new["id"], new["started_at"],
                      json.dumps(sorted(set(rows["cell_key"]))), json.dumps(sorted(set(rows["metric"])))])
    wanted = set(zip(rows["cell_key"], rows["metric"], rows["params"]))
    hist = hist.sort_values(["started_at", "run_id"])
    return {key: group["value"].dropna().to_numpy(dtype=float)[-history:]
            for key, group in hist.groupby(["cell_key", "metric", "params"], sort=False) if key in wanted}


def _per_process(text: Any, metric: str) -> list | None:
    if not isinstance(text, str) or metric not in noise.PER_PROCESS_KEY:
        return None
    try:
        values = json.loads(text).get(noise.PER_PROCESS_KEY[metric])
    except (ValueError, AttributeError):
        return None
    return values if isinstance(values, list) else None


def _significance(rows: Any, candidates: Any, earlier: dict) -> None:
    """The test, p-value and q-value of each row; q-values adjusted (Benjamini-Hochberg) over every timing row."""
    import numpy as np
    from scipy.stats import false_discovery_control

    tests, ps = [], []
    for cand, k, key, new, pb, pn in zip(candidates, rows["kind"], zip(rows["cell_key"], rows["metric"],
                                                                     rows["params"]),
                                         rows["new"], rows["per_process_base"], rows["per_process_new"]):
        if k != "timing":
            tests.append(k)
            ps.append(np.nan)
            continue
        a, b = _per_process(pb, key[1]), _per_process(pn, key[1])
        if a and b and len(a) >= noise.MIN_PROCESSES and len(b) >= noise.MIN_PROCESSES:
            tests.append(f"welch-t ({len(a)}+{len(b)} processes)")
            ps.append(noise.per_process_p(a, b) if cand else 1.0)
            continue
        hist = earlier.get(key)
        p = noise.history_p(hist, float(new)) if cand and hist is not None else None
        if p is not None:
            tests.append(f"history-t ({len(hist)} runs)")
            ps.append(p)
        elif cand:
            tests.append("untested")
            ps.append(np.nan)
        else:
            tests.append("within threshold")
            ps.append(1.0)
    rows["test"] = tests
    p = np.asarray(ps, dtype=float)
    rows["p_value"] = np.where(candidates, p, np.nan)
    q = np.full(len(p), np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        q[tested] = false_discovery_control(p[tested], method="bh")
    rows["q_value"] = np.where(candidates, q, np.nan)


def _verdicts(rows: Any, candidates: Any, threshold: float, alpha: float, keep_unstable: bool) -> None:
    verdicts, whys = [], []
    for cand, change, direction, k, test, q, base, new, cvb, cvn, cib, cin in zip(
            candidates, rows["change"], rows["direction"], rows["kind"], rows["test"], rows["q_value"],
            rows["base"], rows["new"], rows["cv_base"], rows["cv_new"], rows["ci_rel_base"], rows["ci_rel_new"]):
        note = noise.unstable_note(_num(cvb), _num(cvn)) if k == "timing" and not keep_unstable else None
        if base != base or new != new:
            verdicts.append("no value")
            whys.append("a value is missing")
            continue
        if not cand:
            verdicts.append("ok")
            whys.append(f"within threshold {threshold:.3g}")
            continue
        if k == "dispersion":
            verdicts.append("ok")
            whys.append("dispersion metric: reported, never a regression (--test-dispersion tests it)")
            continue
        if k == "timing":
            if test == "untested":
                verdicts.append("untested")
                whys.append(f"no noise estimate between runs: needs {noise.MIN_HISTORY} earlier runs of this cell "
                            f"on this machine or processes >= {noise.MIN_PROCESSES}")
                continue
            if not (q < alpha):
                verdicts.append("ok")
                whys.append(f"not significant against the noise between runs ({test}: q={q:.3g} >= {alpha:g})")
                continue
            if note:
                # Discounted: the change must also clear both medians' own 95% intervals (order statistics).
                widened = noise.widened_threshold(threshold, _num(cib), _num(cin))
                if not abs(change) > widened:
                    verdicts.append("unstable")
                    whys.append(f"{note} (over {noise.UNSTABLE_CV:.0%}, pyperf's rule): discounted; within the "
                                f"threshold widened by the medians' 95% intervals, {widened:.3g}")
                    continue
        if direction is None or direction != direction:
            verdicts.append("changed")
            whys.append("changed; the metric has no better direction")
            continue
        better = (change > 0) == bool(direction)
        verdicts.append("improvement" if better else "regression")
        basis = f"significant ({test}, q={q:.2g})" if k == "timing" else "deterministic metric"
        beyond = (f"beyond the threshold widened for an unstable measurement ({note}), "
                  f"{noise.widened_threshold(threshold, _num(cib), _num(cin)):.3g}") if note else \
            f"beyond threshold {threshold:.3g}"
        whys.append(f"{basis}, {beyond}")
    rows["verdict"] = verdicts
    rows["why"] = whys


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
