"""The generic rules a study's findings are judged by: statistics over seeds, and five kinds of finding.

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
- ``matched``: for each of ``pairs`` (two configurations, each a method and parameter values, matched by
  the study, e.g. at equal parameter counts), the first's mean ``metric`` is ``better`` (``higher`` or
  ``lower``) than the second's; ``size`` names a metric shown beside each (the parameters it matched on).

Two means differ when their gap exceeds twice the standard error of the difference.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.query.pareto import non_dominated
from harness.query.refs import QueryError


@dataclass(frozen=True)
class Stat:
    """A metric over seeds: mean, sample standard deviation (0 with one seed) and count."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat | None:
        """The statistics of ``values`` (``None`` when there are none)."""
        vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if not vals:
            return None
        return cls(statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0, len(vals))

    @property
    def se(self) -> float:
        """Standard error of the mean."""
        return self.std / math.sqrt(self.n)

    def text(self, digits: int = 3) -> str:
        """``0.912 ± 0.013`` (the mean alone for one seed)."""
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def compare_means(a: Stat, b: Stat) -> str:
    """``higher``, ``lower`` or ``level``: is ``a``'s mean beyond twice the standard error of the difference?"""
    diff = a.mean - b.mean
    margin = 2 * math.sqrt(a.se ** 2 + b.se ** 2)
    if diff > margin:
        return "higher"
    if diff < -margin:
        return "lower"
    return "level"


def stat(frame: Any, metric: str, **where: Any) -> Stat | None:
    """The statistics over seeds of ``metric`` in the rows matching ``where`` (one value per seed)."""
    rows = frame[frame["metric"] == metric]
    for key, value in where.items():
        rows = rows[rows[key].isna()] if value is None else rows[rows[key] == value]
    return Stat.of(rows["value"])


def pareto_front(points: dict[Any, tuple[float, float]]) -> list:
    """Keys of the points ``(size, accuracy)`` that no other point beats (smaller size, higher accuracy;
    :func:`harness.query.pareto.non_dominated`), smallest first. Means, no error bars."""
    keys = list(points)
    mask = non_dominated([(points[k][0], -points[k][1]) for k in keys])
    return sorted((k for k, on in zip(keys, mask) if on), key=lambda k: points[k][0])


@dataclass
class Finding:
    """A known result, and whether this database reproduces it.

    ``checks`` holds ``(holds, evidence)`` pairs, one per comparison the data allows.
    """

    key: str
    claim: str
    source: str
    rule: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``reproduced`` (every comparison holds), ``not reproduced`` (none does), ``partly reproduced
        (k of n)``, or ``not measured``."""
        if not self.checks:
            return "not measured"
        held = sum(1 for ok, _ in self.checks if ok)
        if held == len(self.checks):
            return "reproduced"
        if held == 0:
            return "not reproduced"
        return f"partly reproduced ({held} of {len(self.checks)} comparisons)"


def _groups(frame: Any, metric: str) -> Iterable[tuple[tuple, Any]]:
    """``((model, dataset, backend), rows)`` for every group that measured ``metric``."""
    rows = frame[frame["metric"] == metric]
    yield from rows.groupby(["model", "dataset", "backend"], sort=True)


def _selected(spec: dict, values: set) -> list:
    if "at_least" in spec:
        return sorted(v for v in values if v >= spec["at_least"])
    return sorted(v for v in values if v in spec["values"])


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


def _configuration(rows: Any, sel: dict) -> Any:
    """The rows of one configuration: ``sel["method"]`` with each other key's value among its parameters
    (top level, or any pipeline step's)."""
    part = rows[rows["method"] == sel["method"]]

    def fits(text: str) -> bool:
        params = json.loads(text)
        scopes = [params] + [step.get("params", {}) for step in params.get("steps", [])]
        return all(any(scope.get(k) == v for scope in scopes) for k, v in sel.items() if k != "method")

    return part[part["method_params"].map(fits)] if len(part) else part


def matched(frame: Any, f: Finding, spec: dict) -> None:
    """Matched configurations, pair by pair (see the module)."""
    metric, better, size = spec["metric"], spec["better"], spec.get("size")

    def shown(sel: dict) -> str:
        return sel["method"] + "".join(f" {k}={v}" for k, v in sel.items() if k != "method")

    for (model, dataset, backend), rows in _groups(frame, metric):
        sizes = frame[(frame["metric"] == size) & (frame["model"] == model) & (frame["dataset"] == dataset)]
        for first, second in spec["pairs"]:
            sa, sb = (Stat.of(_configuration(rows, sel)["value"]) for sel in (first, second))
            if sa is None or sb is None:
                continue
            na, nb = (Stat.of(_configuration(sizes, sel)["value"]) if size else None for sel in (first, second))
            at = f" ({size} {na.mean:.0f} vs {nb.mean:.0f})" if na and nb else ""
            outcome = compare_means(sa, sb)
            f.checks.append((outcome == better, f"{model} on {backend}: {shown(first)} {sa.text(4)} vs {shown(second)} "
                                                f"{sb.text(4)} ({metric}){at}: the first is {outcome}"))


#: Each kind's rule and the keys its table must hold (besides ``key``, ``claim``, ``source``, ``rule``).
KINDS = {
    "higher": (higher, ("a", "b", "sweep", "metric")),
    "gate": (gate, ("metric", "gate", "select", "text")),
    "front": (front, ("method", "sweep", "metric", "size", "target", "versus")),
    "gain": (gain, ("metric", "backend", "sweep", "real_gain", "gain", "gain_kind", "no_gain", "no_gain_kind")),
    "matched": (matched, ("metric", "better", "pairs")),
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
    if kind == "matched" and "better" in spec and spec["better"] not in ("higher", "lower"):
        missing.append("better = 'higher' or 'lower'")
    if kind == "matched" and not all(isinstance(p, list) and len(p) == 2 and all(isinstance(c, dict) and "method" in c
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
