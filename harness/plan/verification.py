"""``[[verification]]`` tables: benchmarks x methods x seeds x suites x verifiers.

The lists are read by the same :class:`harness.plan.entries.Lists` as ``[[matrix]]`` tables;
the benchmarks are sources of :mod:`harness.verify.benchmarks` (the planner's one tie to the
benchmark subsystem, allowed by the layer order).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.core.identity import Component
from harness.plan.cells import BASELINE_METHOD, BENCHMARK_DATASET, Cell
from harness.plan.entries import Lists
from harness.verify.benchmarks import sources
from harness.verify.truth import read_truth

VERIFICATION_KEYS = ("benchmarks", "methods", "verifiers", "suites")
#: What a table may leave out: the uncompressed networks, verified by the verification suite.
DEFAULTS: dict[str, list] = {"methods": [BASELINE_METHOD], "suites": ["verification"]}


def verification_cells(table: Mapping[str, Any], where: str, seeds: list[int], lists: Lists) -> list[Cell]:
    """Cells of one ``[[verification]]`` table (none when it has problems, which ``lists`` collects)."""
    lists.unknown_keys(table, where, VERIFICATION_KEYS)
    before = len(lists.problems)
    # Every list's presence is checked before any entry, so a missing list is reported first.
    items = {key: lists.required(table.get(key, DEFAULTS.get(key)), f"{where}.{key}")
             for key in ("benchmarks", "verifiers", "methods", "suites")}
    how: dict[str, dict] = {"benchmarks": {"sources": sources()}, "suites": {"on_benchmark": True}}
    expanded = {key: lists.components(key, values, f"{where}.{key}", **how.get(key, {}))
                for key, values in items.items()}
    if any(m.name != BASELINE_METHOD for m in expanded["methods"]):
        _check_networks(expanded["benchmarks"], f"{where}.benchmarks", lists)
    if len(lists.problems) > before:
        return []
    _check_truth(items["benchmarks"], expanded["benchmarks"], where, lists)
    if len(lists.problems) > before:
        return []
    dataset = Component(BENCHMARK_DATASET, {})
    return [Cell(bench, dataset, method, seed, None, suite.name, verifier=verifier, benchmark=True)
            for bench in expanded["benchmarks"] for method in expanded["methods"] for seed in seeds
            for suite in expanded["suites"] for verifier in expanded["verifiers"]]


def _check_truth(entries: list, benchmarks: list[Component], where: str, lists: Lists) -> None:
    """Every benchmark's ``truth`` file read now, so that a bad one is the suite file's error, not a failed cell."""
    read: set[str] = set()
    for bench in benchmarks:
        path = bench.params.get("truth")
        if not path or path in read:
            continue
        read.add(path)
        index = next((i for i, e in enumerate(entries) if isinstance(e, Mapping) and e.get("truth")
                      and Path(lists.base_dir or ".", str(e["truth"])).expanduser().resolve() == Path(path)), None)
        key = f"{where}.benchmarks" + (f"[{index}].truth" if index is not None else "")
        try:
            read_truth(path)
        except (OSError, ValueError) as exc:
            lists.problems.append((key, str(exc)))


def _check_networks(benchmarks: list[Component], key: str, lists: Lists) -> None:
    """A problem for each ``model.pt`` of a benchmark folder that the safe loader would refuse.

    A method compresses a benchmark's torch networks; a stranger's ``model.pt`` that names
    anything but torch and plugin module classes is refused here, before anything runs, rather
    than in every cell.
    """
    from pathlib import Path

    for i, bench in enumerate(benchmarks):
        folder = bench.params.get("path") if bench.name == "folder" else None
        if not folder or not Path(folder).is_dir():
            continue
        root = Path(folder)
        for module_file in sorted([root / "model.pt", *root.glob("*/model.pt")]):
            if not module_file.is_file():
                continue
            from harness.core.safeload import NETWORK_HINT, refusal

            why = refusal(module_file)
            if why:
                lists.problems.append((f"{key}[{i}].path", f"{module_file} {why}; {NETWORK_HINT}"))
