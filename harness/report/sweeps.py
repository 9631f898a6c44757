"""The kinds of finding that compare configurations across a sweep or a pairing: ``break-even``, ``matched``
(equal accuracy), ``exceeds`` and ``paired`` (equal parameters); their rules are described in
:mod:`harness.report.findings`."""

from __future__ import annotations

import json
import math
from typing import Any

from harness.report.means import Finding, Stat, _groups, compare_means, stat


def real_gain(s: Stat, real: float) -> bool:
    """A real gain: mean above ``real`` and its 2-SE interval above 1."""
    return s.mean > real and s.mean - 2 * s.se > 1


def break_even(frame: Any, f: Finding, spec: dict) -> None:
    """Per model, backend and method, at the largest batch, the smallest swept value from which every higher
    one is a real gain; the claim holds where it is at least ``at_least`` or never reached (see the module)."""
    metric, key, real = spec["metric"], spec["sweep"], spec["real_gain"]
    least, most = spec.get("at_least"), spec.get("at_most")
    backends = spec.get("backends")
    for (model, _dataset, backend), rows in _groups(frame, metric):
        if backends and backend not in backends:
            continue
        for method in spec["methods"]:
            part = rows[rows["method"] == method]
            if part.empty:
                continue
            bs = part["batch_size"].max()
            part = part[part["batch_size"] == bs]
            stats = {v: stat(part, metric, **{key: v}) for v in sorted(set(part[key].dropna()))}
            shown = ", ".join(f"{v:g}: {s.text(2)}" for v, s in stats.items() if s is not None)
            gains = [v for v, s in stats.items() if s is not None and real_gain(s, real)]
            even = next((v for v in stats if all(w in gains for w in stats if w >= v)), None)
            where = f"{model} on {backend}, batch {int(bs)}, {method}"
            if even is None:
                f.checks.append((most is None, f"{where}: no real gain at any {key} ({metric} {shown})"))
            else:
                ok = (least is None or even >= least) and (most is None or even <= most)
                f.checks.append((ok, f"{where}: break-even {key} {even:g} ({metric} {shown})"))


def _configs(rows: Any) -> dict[str, Any]:
    """``{"global-magnitude sparsity=0.5": rows}``: one entry per configuration (label and swept values)."""
    out: dict[str, Any] = {}
    for (label, sp, bits), part in rows.groupby(["label", "sparsity", "bits"], sort=True, dropna=False):
        swept = "".join(f" {k}={v:g}" for k, v in (("sparsity", sp), ("bits", bits)) if v == v and v is not None)
        out[label + swept] = part
    return out


def matched(frame: Any, f: Finding, spec: dict) -> None:
    """Method pairs at (nearly) equal ``match`` compared on ``metric`` (see the module)."""
    metric, match, tol, methods = spec["metric"], spec["match"], float(spec["tolerance"]), spec["methods"]
    expect = spec.get("expect", "level")
    clean = frame[frame["metric"] == match]
    for (model, dataset, backend), rows in _groups(frame, metric):
        acc = clean[(clean["model"] == model) & (clean["dataset"] == dataset) & (clean["backend"] == backend)]
        found: dict[str, list] = {m: [] for m in methods}
        for name, part in _configs(rows[rows["method"].isin(methods)]).items():
            keys = part[["method", "method_params"]].drop_duplicates()
            same = acc.merge(keys, on=["method", "method_params"])
            a, r = Stat.of(same["value"]), Stat.of(part["value"])
            if a is not None and r is not None and a.mean >= spec.get("at_least", -math.inf):
                found[part["method"].iloc[0]].append((name, a, r))
        for i, ma in enumerate(methods):
            for mb in methods[i + 1:]:
                pairs = [(abs(ca[1].mean - cb[1].mean), ca, cb) for ca in found[ma] for cb in found[mb]
                         if abs(ca[1].mean - cb[1].mean) <= tol]
                if not pairs:
                    if found[ma] and found[mb]:
                        f.notes.append(f"{model} on {backend}: no {ma} and {mb} configurations within {tol:g} {match}")
                    continue
                _, (na, aa, ra), (nb, ab, rb) = min(pairs, key=lambda p: (p[0], -p[1][1].mean))
                outcome = compare_means(ra, rb)
                ok = outcome == "level" if expect == "level" else outcome != "level"
                f.checks.append((ok, f"{model} on {backend}: {na} ({match} {aa.text()}) vs {nb} ({match} "
                                     f"{ab.text()}): {metric} {ra.text()} vs {rb.text()}: {ma} is {outcome}"))


def exceeds(frame: Any, f: Finding, spec: dict) -> None:
    """Which methods' configurations have ``metric`` above ``threshold`` (see the module)."""
    metric, threshold, key = spec["metric"], float(spec["threshold"]), spec["sweep"]
    kinds = {**{m: True for m in spec["above"]}, **{m: False for m in spec["not_above"]}}
    judged = set()
    for (model, _dataset, backend), rows in _groups(frame, metric):
        rows = rows[rows["method"].isin(list(kinds))]
        for name, part in _configs(rows).items():
            value = part[key].iloc[0]
            s = Stat.of(part["value"])
            if s is None or value is None or value != value or value not in spec["values"]:
                continue
            judged.add((model, backend, name))
            above = s.mean > threshold and s.mean - 2 * s.se > threshold
            f.checks.append((above == kinds[part["method"].iloc[0]],
                             f"{model} on {backend}: {name}: {metric} {s.text(2)} "
                             f"({'above' if above else 'not above'} {threshold:g})"))
    # Configurations measured (``measured``: the metric every cell has) but without ``metric``: say so.
    present = frame[(frame["metric"] == spec.get("measured", "top1")) & frame["method"].isin(list(kinds))]
    for (model, _dataset, backend), rows in present.groupby(["model", "dataset", "backend"], sort=True):
        for name, part in _configs(rows).items():
            if part[key].iloc[0] in spec["values"] and (model, backend, name) not in judged:
                f.notes.append(f"{model} on {backend}: {name}: no {metric} (not judged)")


def _configuration(rows: Any, sel: dict) -> Any:
    """The rows of one configuration: ``sel["method"]`` with each other key's value among its parameters
    (top level, or any pipeline step's)."""
    part = rows[rows["method"] == sel["method"]]

    def fits(text: str) -> bool:
        params = json.loads(text)
        scopes = [params] + [step.get("params", {}) for step in params.get("steps", [])]
        return all(any(scope.get(k) == v for scope in scopes) for k, v in sel.items() if k != "method")

    return part[part["method_params"].map(fits)] if len(part) else part


def paired(frame: Any, f: Finding, spec: dict) -> None:
    """Configurations paired by the study, pair by pair (see the module)."""
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
