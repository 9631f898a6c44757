"""How many cells a suite file asks for, counted before its grids are expanded, and the limit on it.

A suite file's lists multiply: ten parameters of four values each are a million grid points, and a
plan that large takes minutes and gigabytes to expand before anything runs. :func:`count_cells`
counts from the list lengths alone (the product of each grid's axes, times the other lists), so a
plan over :data:`CELL_LIMIT` is refused at once, in constant memory, unless the caller allows it
(``harness run --yes``). The count does not validate anything (that comes after) and leaves out
the dense baselines the planner adds; :func:`check_size` runs again on the expanded plan, which
counts them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from harness.core.errors import UsageError
from harness.plugin.params import Param

#: The most cells a plan may have unless the run is told ``--yes`` (``max_cells=None``). Documented
#: in docs/suite-files.md ("How big a plan may be").
CELL_LIMIT = 10_000

_KINDS = {"models": "model", "datasets": "dataset", "methods": "method", "backends": "backend",
          "verifiers": "verifier"}


class PlanTooLarge(UsageError):
    """A plan has more cells than the limit allows; the message gives both and how to go on."""

    heading = "plan too large"

    def __init__(self, path: str, cells: int, limit: int, counted: str):
        self.cells, self.limit = cells, limit
        super().__init__(f"{path}: the plan has {cells:,} cells ({counted}), more than the limit of {limit:,} "
                         "cells a run takes without asking; shrink its lists, or pass --yes to run it anyway",
                         file=path)


def grid_points(schema: Iterable[Param] | None, values: dict) -> int:
    """How many grid points ``values`` expand into: the product of the lengths of list values of scalar
    parameters (every list value when the schema is unknown)."""
    kinds = {p.name: p for p in schema or ()}
    n = 1
    for key, value in values.items():
        p = kinds.get(key)
        if isinstance(value, list) and (p is None or p.type is not list):
            n *= max(len(value), 1)
    return n


def _entry_points(registry: Any, kind: str, item: Any) -> int:
    if isinstance(item, str):
        return 1
    if not isinstance(item, dict):
        return 0
    if kind == "method" and isinstance(item.get("pipeline"), list):
        return math.prod(_entry_points(registry, kind, s) for s in item["pipeline"]) if item["pipeline"] else 0
    name = item.get("name")
    schema = None
    if isinstance(name, str) and registry.has(kind, name):
        schema = registry.get(kind, name).spec.params
    return grid_points(schema, {k: v for k, v in item.items() if k != "name"})


def _length(registry: Any, table: dict, key: str, default: list | None = None) -> int:
    items = table.get(key, default)
    if not isinstance(items, list):
        return 0
    kind = _KINDS.get(key)
    if kind is None:  # suites, benchmarks: one each
        return len(items)
    return sum(_entry_points(registry, kind, i) for i in items)


def _matrix(registry: Any, table: dict, seeds: int) -> int:
    base = _length(registry, table, "models") * _length(registry, table, "datasets") * \
        _length(registry, table, "methods") * seeds
    suites = table.get("suites")
    if not isinstance(suites, list):  # the validation that follows says what is wrong with it
        return 0
    per_suite = 0
    for name in suites:
        name = name if isinstance(name, str) else name.get("name") if isinstance(name, dict) else None
        spec = registry.get("suite", name).spec if isinstance(name, str) and registry.has("suite", name) else None
        if spec is not None and spec.per_verifier:
            per_suite += _length(registry, table, "verifiers")
        elif spec is not None and spec.per_backend:
            per_suite += _length(registry, table, "backends")
        else:
            per_suite += 1
    return base * per_suite


def _verification(registry: Any, table: dict, seeds: int) -> int:
    from harness.plan.verification import DEFAULTS

    return (_length(registry, table, "benchmarks") * _length(registry, table, "methods", DEFAULTS["methods"])
            * _length(registry, table, "verifiers") * _length(registry, table, "suites", DEFAULTS["suites"])
            * seeds)


def count_cells(data: dict, registry: Any) -> int:
    """The cells a parsed suite file asks for, from its list lengths (no grid expanded; baselines not counted)."""
    seeds = data.get("seeds", [0])
    n_seeds = len(seeds) if isinstance(seeds, list) else 1
    total = 0
    for key, count in (("matrix", _matrix), ("verification", _verification)):
        tables = data.get(key)
        if isinstance(tables, list):
            total += sum(count(registry, t, n_seeds) for t in tables if isinstance(t, dict))
    return total


def check_size(path: str, cells: int, max_cells: int | None, counted: str) -> None:
    """Raise :class:`PlanTooLarge` when ``cells`` is over ``max_cells`` (``None``: no limit)."""
    if max_cells is not None and cells > max_cells:
        raise PlanTooLarge(path, cells, max_cells, counted)
