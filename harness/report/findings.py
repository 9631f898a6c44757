"""The generic rules a study's findings are judged by: statistics over seeds, and the kinds of finding.

A finding is data, declared in a findings file beside the suite file of the study that tests it
(``suites/pruning-study.findings.toml``): its claim, source, rule text, and one of these kinds with
the methods, metrics and values it names. Nothing here knows a method by name.

- ``higher``: method ``a`` has a higher mean ``metric`` than method ``b`` at each selected value of a
  swept parameter (``at_least``, or the listed ``values``); an ``also`` table adds notes comparing
  ``a`` with ``b`` at the value shifted by ``shift``.
- ``gate``: every selected configuration keeps a mean ``metric`` at or above the quality gate its
  measurements recorded (``info[gate]``, written by the suite that applied the gate).
- ``front``: among one method's sweep, ``target`` is on the Pareto front of (``size`` smallest,
  ``metric`` largest) and its ``metric`` is not lower than ``versus``'s.
- ``gain``: on one backend, at the largest batch size, every ``gain`` method's mean ``metric`` (a ratio
  to the baseline) is a real gain and no ``no_gain`` method's is.
- ``break-even``: per model, backend (those in ``backends``, or all) and each of ``methods``, at the
  largest batch size, the smallest ``sweep`` value from which every higher value's ``metric`` is a real
  gain (mean above ``real_gain``, 2-SE interval above 1); the claim holds where that value is at least
  ``at_least`` (or no swept value pays off), and at most ``at_most`` (a value must pay off).
- ``matched``: for every pair of ``methods``, the two configurations whose mean ``match`` metric (clean
  top-1) is closest, within ``tolerance`` (and at least ``at_least``, so that models at chance are not
  compared), have a ``level`` mean ``metric`` (``expect = "level"``) or a different one
  (``expect = "differ"``): equal accuracy, equal robustness?
- ``exceeds``: every configuration of the ``above`` methods has a mean ``metric`` above ``threshold``
  (its 2-SE interval too) and none of the ``not_above`` methods' has, at the selected ``sweep`` values.
- ``paired``: for each of ``pairs`` (two configurations, each a method and parameter values, matched by
  the study, e.g. at equal parameter counts), the first's mean ``metric`` is ``better`` (``higher`` or
  ``lower``) than the second's; ``size`` names a metric shown beside each (the parameters it matched on).

Two means differ when their gap exceeds twice the standard error of the difference.
"""

from __future__ import annotations

import json
from typing import Any

from harness.query.refs import QueryError
from harness.report.means import Finding, Stat, _groups, _selected, compare_means, pareto_front, stat
from harness.report.sweeps import break_even, exceeds, matched, paired

__all__ = ["KINDS", "Finding", "Stat", "check_spec", "compare_means", "judge", "pareto_front", "stat"]


def higher(frame: Any, f: Finding, spec: dict) -> None:
    """Method ``a`` against ``b`` on ``metric`` at each selected value of ``sweep`` (see the module)."""
    a, b, key, metric = spec["a"], spec["b"], spec["sweep"], spec["metric"]
    for (model, _dataset, backend), rows in _groups(frame, metric):
        common = set(rows[rows["method"] == a][key].dropna()) & set(rows[rows["method"] == b][key].dropna())
        for v in _selected(spec, common):
            sa = stat(rows, metric, method=a, **{key: v})
            sb = stat(rows, metric, method=b, **{key: v})
            if sa is None or sb is None:
                continue
            outcome = compare_means(sa, sb)
            f.checks.append((outcome == "higher", f"{model} on {backend}, {key} {v:g}: {a} {sa.text()} vs {b} "
                                                  f"{sb.text()} ({metric}): {a} is {outcome}"))
    also = spec.get("also")
    if also:
        for (model, _dataset, backend), rows in _groups(frame, metric):
            for v in also["values"]:
                sa = stat(rows, metric, method=a, **{key: v})
                sb = stat(rows, metric, method=b, **{key: v + also["shift"]})
                if sa is not None and sb is not None:
                    f.notes.append(also["note"].format(model=model, backend=backend, a=a, b=b, va=v,
                                                       vb=v + also["shift"], sa=sa.text(), sb=sb.text(),
                                                       outcome=compare_means(sa, sb)))


def _recorded(info: str | None, key: str) -> Any:
    """``info[key]`` of a measurement's stored (JSON) info, or ``None``."""
    return json.loads(info).get(key) if info and key in info else None


def gate(frame: Any, f: Finding, spec: dict) -> None:
    """Selected configurations against the gate their measurements recorded (see the module)."""
    import pandas as pd

    metric, key = spec["metric"], spec["gate"]
    gates: set[float] = set()
    for (model, _dataset, backend), rows in _groups(frame, metric):
        chosen = []
        for sel in spec["select"]:
            part = rows[rows["method"] == sel["method"]]
            for k, v in sel.items():
                if k != "method":
                    part = part[part[k] == v]
            shown = "".join(f" {k}={v:g}" for k, v in sel.items() if k != "method")
            chosen.append(part.assign(_shown=part["label"] + shown))
        for shown, part in pd.concat(chosen).groupby("_shown", sort=True):
            s = Stat.of(part["value"])
            recorded = {g for g in part["info"].map(lambda text: _recorded(text, key)) if g is not None}
            if s is None:
                continue
            if not recorded:
                f.notes.append(f"{model} on {backend}: {shown} recorded no {key}")
                continue
            threshold = max(recorded)  # one gate per configuration; were they to differ, the strictest
            gates.add(threshold)
            f.checks.append((s.mean >= threshold, spec["text"].format(model=model, backend=backend, config=shown,
                                                                      value=s.text(spec.get("digits", 3)))))
    f.rule = f.rule.format(gate=", ".join(f"{g:g}" for g in sorted(gates)) or key)


def front(frame: Any, f: Finding, spec: dict) -> None:
    """One method's sweep on the (size, metric) Pareto front (see the module)."""
    method, key, metric, target, versus = spec["method"], spec["sweep"], spec["metric"], spec["target"], spec["versus"]
    unit, size_unit = spec.get("unit", key), spec.get("size_unit", "")
    size = frame[(frame["metric"] == spec["size"]) & (frame["method"] == method)]
    for (model, dataset, backend), rows in _groups(frame, metric):
        swept = rows[rows["method"] == method]
        points, acc = {}, {}
        for v in sorted(set(swept[key].dropna())):
            a = stat(swept, metric, **{key: v})
            b = Stat.of(size[(size["model"] == model) & (size["dataset"] == dataset) & (size[key] == v)]["value"])
            if a is not None and b is not None:
                points[int(v)] = (b.mean, a.mean)
                acc[int(v)] = a
        if target not in points or versus not in points:
            continue
        on_front = pareto_front(points)
        outcome = compare_means(acc[target], acc[versus])
        ok = target in on_front and outcome != "lower"
        f.checks.append((ok, f"{model} on {backend}: front {', '.join(f'{v} {unit}' for v in on_front)}; "
                             f"{target} {unit} {acc[target].text()} at {points[target][0]:.0f} {size_unit} vs "
                             f"{versus} {unit} {acc[versus].text()} at {points[versus][0]:.0f} {size_unit}: "
                             f"{target} {unit} is {outcome}"))


def gain(frame: Any, f: Finding, spec: dict) -> None:
    """Real gains for one group of methods and none for the other, at the largest batch (see the module)."""
    metric, backend, key, real = spec["metric"], spec["backend"], spec["sweep"], spec["real_gain"]
    kinds = {**{m: spec["gain_kind"] for m in spec["gain"]}, **{m: spec["no_gain_kind"] for m in spec["no_gain"]}}
    rows = frame[(frame["metric"] == metric) & (frame["backend"] == backend)]
    rows = rows[rows["method"].isin(list(spec["gain"]) + list(spec["no_gain"]))]
    seen = set()
    for (model, _dataset), part in rows.groupby(["model", "dataset"], sort=True):
        largest = part["batch_size"].max()
        for (bs, label, value), cfg in part.groupby(["batch_size", "label", key], sort=True):
            s = Stat.of(cfg["value"])
            if s is None:
                continue
            real_gain = s.mean > real and s.mean - 2 * s.se > 1
            kind = kinds[cfg["method"].iloc[0]]
            expected = kind == spec["gain_kind"]
            text = (f"{model}, batch {int(bs)}: {label} ({kind}) at {key} {value:g}: {metric} {s.text(2)} "
                    f"({'a' if real_gain else 'no'} real gain)")
            if bs == largest:
                seen.add(kind)
                f.checks.append((real_gain == expected, text))
            else:
                f.notes.append(text)
    if seen != {spec["gain_kind"], spec["no_gain_kind"]}:  # the finding contrasts the two: one side says nothing
        f.notes = ([f"only {', '.join(sorted(seen)) or 'no'} {spec.get('what', 'method')} was timed on {backend}"]
                   + [text for _, text in f.checks] + f.notes)
        f.checks = []


#: Each kind's rule and the keys its table must hold (besides ``key``, ``claim``, ``source``, ``rule``).
KINDS = {
    "higher": (higher, ("a", "b", "sweep", "metric")),
    "gate": (gate, ("metric", "gate", "select", "text")),
    "front": (front, ("method", "sweep", "metric", "size", "target", "versus")),
    "gain": (gain, ("metric", "backend", "sweep", "real_gain", "gain", "gain_kind", "no_gain", "no_gain_kind")),
    "break-even": (break_even, ("metric", "sweep", "real_gain", "methods")),
    "matched": (matched, ("metric", "match", "tolerance", "methods")),
    "exceeds": (exceeds, ("metric", "threshold", "sweep", "values", "above", "not_above")),
    "paired": (paired, ("metric", "better", "pairs")),
}


def check_spec(spec: dict, where: str) -> None:
    """Raise a :class:`QueryError` naming ``where`` unless ``spec`` is a complete finding of a known kind."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise QueryError(f"{where}: finding {spec.get('key', '?')!r}: unknown kind {kind!r} (known: "
                         f"{', '.join(KINDS)})", file=where, key="findings")
    needed = ("key", "claim", "source", "rule", *KINDS[kind][1])
    missing = [k for k in needed if k not in spec]
    if kind == "higher" and "at_least" not in spec and "values" not in spec:
        missing.append("at_least or values")
    if kind == "break-even" and "at_least" not in spec and "at_most" not in spec:
        missing.append("at_least or at_most")
    if kind == "paired" and "better" in spec and spec["better"] not in ("higher", "lower"):
        missing.append("better = 'higher' or 'lower'")
    if kind == "paired" and not all(isinstance(p, list) and len(p) == 2 and all(isinstance(c, dict) and "method" in c
                                                                                  for c in p)
                                     for p in spec.get("pairs", [])):
        missing.append("pairs as [[{ method = ... }, { method = ... }], ...]")
    if missing:
        raise QueryError(f"{where}: finding {spec.get('key', '?')!r} ({kind}) needs {', '.join(missing)}",
                         file=where, key="findings")


def judge(frame: Any, spec: dict) -> Finding:
    """The finding ``spec`` (one ``[[findings]]`` table, checked by :func:`check_spec`) judged on ``frame``."""
    f = Finding(spec["key"], spec["claim"], spec["source"], spec["rule"])
    KINDS[spec["kind"]][0](frame, f, spec)
    return f
