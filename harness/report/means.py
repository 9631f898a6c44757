"""What a study's findings are judged with: a metric's statistics over seeds, the 2-SE comparison of two
means, a Pareto front, and the ``Finding`` each rule fills (:mod:`harness.report.findings`)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.query.pareto import non_dominated


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
