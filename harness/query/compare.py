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
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.query import noise, pairing
from harness.query.columns import column_name, label, params_text
from harness.query.refs import QueryError, describe_machine, resolve_run
from harness.store.check import open_readonly

#: Earlier runs of a cell needed for the history test (re-exported from :mod:`harness.query.noise`).
MIN_HISTORY = noise.MIN_HISTORY


class MachineMismatch(QueryError):
    """BASE and NEW were measured on machines with different fingerprints."""


VERDICTS = ("regression", "improvement", "changed", "unstable", "untested", "ok", "no value")
_RANK = {v: i for i, v in enumerate(VERDICTS)}
DISPLAY = ["verdict", "model", "dataset", "method", "method_params", "seed", "backend", "backend_params",
           "metric", "base_run", "base", "new", "change", "change_kind", "test", "p_value", "q_value", "flag", "why"]
#: Columns of :attr:`Comparison.rows` besides :data:`DISPLAY`.
EXTRA = ["cell_key", "unit", "kind"]


@dataclass
class Comparison:
    """The result of :func:`compare_runs`: one row per (cell, metric) present in both runs (or in the new
    run and the last earlier run where the cell succeeded), held as columns (``{name: [values]}``).

    Without ``every_row`` only the rows that are not ``ok`` are kept (what :meth:`listing` shows); the
    ``quiet`` others, within the threshold, are counted (:meth:`count`, :meth:`summary`) and nothing else."""

    base: dict
    new: dict
    columns: dict
    threshold: float
    alpha: float
    only_base: int
    only_new: int
    #: Cells and (cell, metric) rows compared.
    cells: int = 0
    metrics: int = 0
    forced_across_machines: bool = False
    #: ``{run id: cells}`` compared against an earlier run because they failed or were missing in BASE.
    fallback: dict = field(default_factory=dict)
    #: Rows within the threshold that were counted, not kept (``every_row=False``): all ``ok``.
    quiet: int = 0
    every_row: bool = True

    @cached_property
    def rows(self) -> Any:
        """The kept rows as a pandas DataFrame (:data:`DISPLAY` and :data:`EXTRA` columns), in the runs' order."""
        import pandas as pd

        return pd.DataFrame(self.columns)

    def count(self, verdict: str) -> int:
        """How many rows have this verdict."""
        return self.columns["verdict"].count(verdict) + (self.quiet if verdict == "ok" else 0)

    @property
    def exit_code(self) -> int:
        """1 when a significant regression beyond the threshold was found, else 0 (for CI)."""
        return 1 if self.count("regression") else 0

    def summary(self) -> str:
        """One paragraph for people: what was compared, what was found, and what was discounted."""
        lines = [f"compared run {self.base['id']} (base) with run {self.new['id']} (new): {self.cells} cells, "
                 f"{self.metrics} metrics; threshold {self.threshold:.3g}, alpha {self.alpha:g} "
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

    def listing(self, show_all: bool = False) -> list[dict]:
        """The rows to show, one dict per row with the :data:`DISPLAY` keys in order: everything but ``ok`` (or
        all of them, which needs ``every_row``), worst first."""
        if show_all and not self.every_row:
            raise ValueError("listing every row needs compare_runs(..., every_row=True)")
        c = self.columns
        keep = [i for i, v in enumerate(c["verdict"]) if show_all or v != "ok"]
        # pandas' order, which this listing had: missing values (no change, no backend) last in their key.
        keep.sort(key=lambda i: (_RANK[c["verdict"][i]], _nan_last(-abs(c["change"][i])), _none_last(c["model"][i]),
                                 _none_last(c["method"][i]), _none_last(c["method_params"][i]),
                                 _none_last(c["backend"][i]), _none_last(c["metric"][i])))
        columns = [c[name] for name in DISPLAY]
        return [dict(zip(DISPLAY, (col[i] for col in columns))) for i in keep]


def _nan_last(x: float) -> tuple:
    return (True, 0.0) if x != x else (False, x)


def _none_last(x: Any) -> tuple:
    return (True, "") if x is None else (False, x)


def compare_runs(db: str | Path, base_ref: str, new_ref: str, *, threshold: float = 0.05, alpha: float = 0.01,
                 force: bool = False, metrics: list[str] | None = None, history: int = 10,
                 keep_unstable: bool = False, test_dispersion: bool = False, every_row: bool = True) -> Comparison:
    """Compare run ``new_ref`` against run ``base_ref`` (ids, ``latest``, ``previous`` or tags).

    ``history`` earlier runs of a cell on NEW's machine (0: none) give the noise between runs where
    the runs have no per-process values; ``keep_unstable`` counts unstable measurements' changes;
    ``test_dispersion`` tests stdev and the like as timing metrics; without ``every_row`` the rows within
    the threshold are counted in SQL and not kept (``harness compare`` without ``--all``: the pairs that
    need no test never come into Python). Raises :class:`MachineMismatch` when the runs' machine fingerprints differ and
    ``force`` is false, and :class:`harness.query.refs.QueryError` for unknown runs, metrics or bad settings.
    """
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
        conn.row_factory = None  # plain tuples from here on
        directions = {r[0]: (None if r[1] is None else bool(r[1]))
                      for r in conn.execute("SELECT name, higher_is_better FROM metrics")}
        try:
            counts = pairing.pair(conn, base, new, metrics)
        except QueryError as exc:  # a stored value that is no number: name the file too
            raise QueryError(f"{db}: {exc}") from None
        if metrics:
            known = pairing.known_metrics(conn, base, new)
            unknown = [m for m in metrics if m not in known]
            if unknown:
                raise QueryError(f"--metric {', '.join(unknown)}: not measured in these runs "
                                 f"(metrics: {', '.join(sorted(known))})")
        quiet = [] if every_row else pairing.quiet_counts(conn, threshold)
        c = _read(pairing.rows(conn, threshold, every_row), threshold, directions, test_dispersion)
        timing = [i for i, k in enumerate(c["kind"]) if k == "timing"]
        stats = pairing.sample_stats(conn, {x for i in timing for x in (c["cell"][i], c["base_cell"][i])})
        _significance(c, timing, stats, conn, new, history,
                      sum(n for m, u, s, n in quiet if noise.kind(m, bool(s), test_dispersion, u) == "timing"))
        ids = pairing.identities(conn, set(c["cell"]))
    finally:
        conn.close()
    _verdicts(c, stats, threshold, alpha, keep_unstable)
    _labels(c, ids)
    return Comparison(base=base, new=new, columns={k: c[k] for k in DISPLAY + EXTRA}, threshold=threshold,
                      alpha=alpha, only_base=counts["only_base"], only_new=counts["only_new"], cells=counts["cells"],
                      metrics=counts["metrics"], forced_across_machines=across, fallback=counts["fallback"],
                      quiet=sum(r[3] for r in quiet), every_row=every_row)


def change(base: float, new: float, unit: str | None) -> tuple[float, str]:
    """Signed change and its kind: relative, or absolute for fractions and non-positive bases."""
    if unit == "fraction" or not base > 0:
        return new - base, "absolute"
    return new / base - 1.0, "relative"


def _read(pairs: Any, threshold: float, directions: dict, test_dispersion: bool) -> dict:
    """The pairs as columns, with each one's change, kind (:func:`harness.query.noise.kind`) and direction."""
    names = ("cell_key", "raw_metric", "params", "unit", "new", "flag", "base", "base_run", "cell", "base_cell",
             "sampled", "change", "change_kind", "kind", "candidate", "direction")
    c: dict = {n: [] for n in names}
    kinds: dict = {}
    add = [c[n].append for n in names]
    for key, metric, params, unit, new, flag, base, base_run, cell, base_cell, sampled in pairs:
        new = math.nan if new is None else float(new)
        base = math.nan if base is None else float(base)
        delta, delta_kind = change(base, new, unit)
        kind = kinds.get((metric, sampled, unit))
        if kind is None:
            kind = kinds[(metric, sampled, unit)] = noise.kind(metric, bool(sampled), test_dispersion, unit)
        for put, v in zip(add, (key, metric, params, unit, new, flag, base, base_run, cell, base_cell, sampled, delta,
                                delta_kind, kind, abs(delta) > threshold, directions.get(metric))):
            put(v)
    return c


def _per_process(text: Any, metric: str) -> list | None:
    if not isinstance(text, str) or metric not in noise.PER_PROCESS_KEY:
        return None
    try:
        values = json.loads(text).get(noise.PER_PROCESS_KEY[metric])
    except (ValueError, AttributeError):
        return None
    return values if isinstance(values, list) else None


def _significance(c: dict, timing: list, stats: dict, conn: Any, new: dict, history: int, quiet_timing: int) -> None:
    """The test, p-value and q-value of each row; q-values adjusted (Benjamini-Hochberg) over every timing row,
    the ``quiet_timing`` rows within the threshold that were not kept among them (each p = 1)."""
    n = len(c["kind"])
    c["test"], p = list(c["kind"]), [math.nan] * n
    needs_history = {}
    for i in timing:
        metric, params, cand = c["raw_metric"][i], c["params"][i], c["candidate"][i]
        a = _per_process((stats.get((c["base_cell"][i], params)) or (None, None))[1], metric)
        b = _per_process((stats.get((c["cell"][i], params)) or (None, None))[1], metric)
        if a and b and len(a) >= noise.MIN_PROCESSES and len(b) >= noise.MIN_PROCESSES:
            c["test"][i] = f"welch-t ({len(a)}+{len(b)} processes)"
            got = noise.per_process_p(a, b) if cand else 1.0
            p[i] = math.nan if got is None else got
        elif cand:
            needs_history[i] = (c["cell_key"][i], metric, params)
        else:
            c["test"][i], p[i] = "within threshold", 1.0
    earlier = pairing.history(conn, new, set(needs_history.values())) if history else {}
    for i, key in needs_history.items():
        hist = earlier.get(key)
        hist = hist[-history:] if hist is not None else None
        got = noise.history_p(hist, c["new"][i]) if hist is not None else None
        if got is not None:
            c["test"][i], p[i] = f"history-t ({len(hist)} runs)", got
        else:
            c["test"][i] = "untested"
    tested = [i for i in range(n) if p[i] == p[i]]
    q = noise.benjamini_hochberg([p[i] for i in tested] + [1.0] * quiet_timing)
    adjusted = dict(zip(tested, (float(v) for v in q)))
    cand = c["candidate"]
    c["p_value"] = [p[i] if cand[i] else math.nan for i in range(n)]
    c["q_value"] = [adjusted.get(i, math.nan) if cand[i] else math.nan for i in range(n)]


def _verdicts(c: dict, stats: dict, threshold: float, alpha: float, keep_unstable: bool) -> None:
    c["verdict"], c["why"] = [], []
    within = ("ok", f"within threshold {threshold:.3g}")
    for i, (cand, k, base, new) in enumerate(zip(c["candidate"], c["kind"], c["base"], c["new"])):
        if base != base or new != new:
            verdict, why = "no value", "a value is missing"
        elif not cand:
            verdict, why = within
        else:
            metric = c["raw_metric"][i]
            cvb, cib = _spread(stats.get((c["base_cell"][i], c["params"][i])), metric)
            cvn, cin = _spread(stats.get((c["cell"][i], c["params"][i])), metric)
            verdict, why = _verdict(c["change"][i], c["direction"][i], k, c["test"][i], c["q_value"][i], cvb, cvn,
                                    cib, cin, threshold, alpha, keep_unstable)
        c["verdict"].append(verdict)
        c["why"].append(why)


def _spread(stats: tuple | None, metric: str) -> tuple:
    """The coefficient of variation and the relative half-width of the 95% interval that judge an unstable
    measurement of ``metric`` (:func:`harness.query.pairing.sample_stats`): the median's; for ``p10_ms`` the
    10th percentile's where the run recorded it; for ``cpu_ms`` those of its own CPU-time samples."""
    cv, _, ci, ci10, cpu_cv, cpu_ci = stats or (None,) * 6
    if metric == "cpu_ms":
        return cpu_cv, cpu_ci
    return cv, (ci10 if metric == "p10_ms" and ci10 is not None else ci)


def _verdict(change: float, direction: Any, k: str, test: str, q: float, cvb: Any, cvn: Any, cib: Any, cin: Any,
             threshold: float, alpha: float, keep_unstable: bool) -> tuple[str, str]:
    """The verdict of a change beyond the threshold, and why."""
    note = noise.unstable_note(_num(cvb), _num(cvn)) if k == "timing" and not keep_unstable else None
    if k == "dispersion":
        return "ok", "dispersion metric: reported, never a regression (--test-dispersion tests it)"
    if k == "timing":
        if test == "untested":
            return "untested", (f"no noise estimate between runs: needs {noise.MIN_HISTORY} earlier runs of this "
                                f"cell on this machine or processes >= {noise.MIN_PROCESSES}")
        if not (q < alpha):
            return "ok", f"not significant against the noise between runs ({test}: q={q:.3g} >= {alpha:g})"
        if note:
            # Discounted: the change must also clear both medians' own 95% intervals (order statistics).
            widened = noise.widened_threshold(threshold, _num(cib), _num(cin))
            if not abs(change) > widened:
                return "unstable", (f"{note} (over {noise.UNSTABLE_CV:.0%}, pyperf's rule): discounted; within the "
                                    f"threshold widened by the medians' 95% intervals, {widened:.3g}")
    if direction is None:
        return "changed", "changed; the metric has no better direction"
    better = (change > 0) == bool(direction)
    basis = f"significant ({test}, q={q:.2g})" if k == "timing" else "deterministic metric"
    beyond = (f"beyond the threshold widened for an unstable measurement ({note}), "
              f"{noise.widened_threshold(threshold, _num(cib), _num(cin)):.3g}") if note else \
        f"beyond threshold {threshold:.3g}"
    return ("improvement" if better else "regression"), f"{basis}, {beyond}"


def _labels(c: dict, ids: dict) -> None:
    """Identity and metric columns as the leaderboard shows them, each distinct value converted once."""
    texts: dict = {}

    def once(fn, *args):
        key = (fn, *args)
        if key not in texts:
            texts[key] = fn(*args)
        return texts[key]

    for name in ("model", "dataset", "method", "method_params", "seed", "backend", "backend_params"):
        c[name] = []
    for cell in c["cell"]:
        model, mp, dataset, dp, method, methp, seed, backend, bp = ids[cell]
        for name, v in (("model", once(label, model, mp)), ("dataset", once(label, dataset, dp)), ("method", method),
                        ("method_params", once(_params, methp)), ("seed", seed), ("backend", backend),
                        ("backend_params", once(_params, bp))):
            c[name].append(v)
    c["metric"] = [once(column_name, m, p) for m, p in zip(c["raw_metric"], c["params"])]


def _params(text: str) -> str:
    return params_text(json.loads(text))


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
