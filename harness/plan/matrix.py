"""``[[matrix]]`` tables: models x datasets x methods x seeds x suites, per backend or per verifier.

Each list is read by :class:`harness.plan.entries.Lists` (the reader ``[[verification]]`` tables
share); this module decides which lists a table needs and crosses them into cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.core.identity import Component
from harness.plan.cells import Cell
from harness.plan.entries import Lists, names
from harness.plugin.specs import SuiteSpec

MATRIX_KEYS = ("models", "datasets", "methods", "backends", "verifiers", "suites")
#: Keys a [[matrix]] table may leave out: backends when no suite runs per backend, verifiers when
#: none runs per verifier.
OPTIONAL_MATRIX_KEYS = ("backends", "verifiers")


def matrix_cells(table: Mapping[str, Any], where: str, seeds: list[int], lists: Lists) -> list[Cell]:
    """Cells of one ``[[matrix]]`` table (none when a list it needs has problems, which ``lists`` collects)."""
    registry = lists.registry
    lists.unknown_keys(table, where, MATRIX_KEYS)
    # A first look at the suites, before they are validated, says which optional lists are needed.
    listed = [registry.suite(n) for n in names(table.get("suites")) if registry.has("suite", n)]
    needed = {"backends": any(not sp.per_verifier and sp.per_backend for sp in listed),
              "verifiers": any(sp.per_verifier for sp in listed)}
    expanded = {key: _components(table, where, key, listed, needed.get(key, True), lists)
                for key in MATRIX_KEYS}
    if any(not expanded[k] for k in MATRIX_KEYS if k not in OPTIONAL_MATRIX_KEYS or needed[k]):
        return []
    return _cross(expanded, seeds, lists)


def _components(table: Mapping[str, Any], where: str, key: str, listed: list[SuiteSpec], needed: bool,
                lists: Lists) -> list[Component]:
    """One list of the table read into components; an optional list nobody needs may be left out."""
    items = table.get(key)
    lkey = f"{where}.{key}"
    if not needed:
        if key == "verifiers" and items is not None:
            lists.problems.append((lkey, "no suite of this table runs per verifier (the robustness suite "
                                   "does; verification runs in [[verification]] tables)"))
        if items is None:
            return []
    why = ""
    if key in OPTIONAL_MATRIX_KEYS:
        runs = [sp.name for sp in listed if (sp.per_verifier if key == "verifiers" else
                                             sp.per_backend and not sp.per_verifier)]
        why = f" (suite {', '.join(runs)} runs per {key[:-1]})"
    items = lists.required(items, lkey, why)
    how = {"on_benchmark": False} if key == "suites" else {}
    return lists.components(key, items, lkey, **how)


def _cross(expanded: dict[str, list[Component]], seeds: list[int], lists: Lists) -> list[Cell]:
    """The cells of the expanded lists: per verifier, per backend or once per artifact, as each suite runs."""
    cells: list[Cell] = []
    for model in expanded["models"]:
        for dataset in expanded["datasets"]:
            for method in expanded["methods"]:
                for seed in seeds:
                    for suite in expanded["suites"]:
                        spec = lists.registry.suite(suite.name)
                        if spec.per_verifier:
                            cells += [Cell(model, dataset, method, seed, None, suite.name, verifier=verifier)
                                      for verifier in expanded["verifiers"]]
                            continue
                        backends = expanded["backends"] if spec.per_backend else [None]
                        cells += [Cell(model, dataset, method, seed, backend, suite.name) for backend in backends]
    return cells
