"""Suite files (TOML): read, validate the top level and the settings, expand the tables into a plan.

Every problem is reported before anything runs, each naming the file, the key and the reason.
The tables are expanded by :mod:`harness.plan.matrix` and :mod:`harness.plan.verification`, and
the cells completed by :mod:`harness.plan.compat` (baselines, order, what cannot run).
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError
from harness.core.identity import canonical
from harness.plan.cells import Cell, Plan
from harness.plan.compat import add_baselines, dedupe, mark_incompatible
from harness.plan.entries import Lists, Problems
from harness.plan.matrix import matrix_cells
from harness.plan.size import check_size, count_cells
from harness.plan.verification import verification_cells
from harness.plugin.manager import Registry
from harness.plugin.params import Param, check_values, unknown_name, validate

TOP_KEYS = {"name", "description", "version", "seeds", "matrix", "settings", "verification"}

#: Host-level settings under ``[settings.execution]``.
EXECUTION_SETTINGS = (
    Param("timeout_s", float, default=600.0, min=1.0, max=7 * 86400.0, grid=False,
          help="wall-clock limit of one cell, artifact build included"),
    Param("memory_limit_mb", int, default=0, min=0, grid=False,
          help="address-space limit of a cell's worker process (0: none)"),
)


class SuiteFileError(UsageError, ValueError):
    """A suite file is invalid. ``problems`` holds (key, reason) pairs; ``file`` is the path, ``key`` the
    key at fault when there is exactly one."""

    heading = "invalid suite file"

    def __init__(self, path: str, problems: list[tuple[str, str]]):
        self.path = path
        self.problems = problems
        lines = [f"{path}: {key}: {reason}" if key else f"{path}: {reason}" for key, reason in problems]
        only = problems[0][0] if len(problems) == 1 else ""
        super().__init__("\n".join(lines), file=str(path), key=only or None)


def load_plan(path: str | Path, registry: Registry, *, max_cells: int | None = None) -> Plan:
    """Read, validate and expand a suite file; raise :class:`SuiteFileError` listing every problem.

    ``max_cells`` refuses a plan of more cells (:class:`harness.plan.size.PlanTooLarge`), counted
    before any grid is expanded; ``None``: no limit.
    """
    p = Path(path)
    shown = str(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SuiteFileError(shown, [("", f"cannot read the suite file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise SuiteFileError(shown, [("", f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                                      f"{exc.start}): a suite file is TOML, which is UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteFileError(shown, [("", f"invalid TOML: {exc}")]) from None
    return plan_from_dict(data, registry, path=shown, text=text, base_dir=p.parent, max_cells=max_cells)


def plan_from_dict(data: dict, registry: Registry, *, path: str = "<suite>", text: str | None = None,
                   base_dir: Path | None = None, max_cells: int | None = None) -> Plan:
    """Validate the parsed suite file ``data`` and expand it into a :class:`Plan` (``max_cells``: see
    :func:`load_plan`)."""
    # Counted from the list lengths first: refusing a million-cell grid must not expand it.
    check_size(path, count_cells(data, registry), max_cells, "counted from its lists")
    problems: Problems = []
    text = text if text is not None else canonical(data)
    name = _top_level(data, problems)
    seeds = _seeds(data.get("seeds", [0]), problems)
    settings, execution = _settings(data.get("settings", {}), registry, problems)
    matrix, verification = _tables(data, problems)
    lists = Lists(registry, base_dir, problems)
    cells: list[Cell] = []
    for mi, table in enumerate(matrix):
        cells += matrix_cells(table, f"matrix[{mi}]", seeds, lists)
    for vi, table in enumerate(verification):
        cells += verification_cells(table, f"verification[{vi}]", seeds, lists)
    if problems:
        raise SuiteFileError(path, problems)

    cells = add_baselines(dedupe(cells), registry)
    check_size(path, len(cells), max_cells, "dense baselines included")
    mark_incompatible(cells, registry)
    return Plan(name=name, path=path, text=text, sha256=hashlib.sha256(text.encode()).hexdigest(),
                seeds=list(seeds), cells=cells, settings=settings, execution=execution,
                description=data.get("description", ""), version=data.get("version", ""))


def _top_level(data: dict, problems: Problems) -> Any:
    """Unknown top-level keys, the name, description and version checked; the name returned."""
    for key in data:
        if key not in TOP_KEYS:
            problems.append((key, unknown_name("key", key, sorted(TOP_KEYS))))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.append(("name", "is required and must be a non-empty string"))
    for key in ("description", "version"):
        if key in data and not isinstance(data[key], str):
            problems.append((key, f"expected a string, got {type(data[key]).__name__}"))
    return name


def _seeds(seeds: Any, problems: Problems) -> list[int]:
    """The seeds, checked: non-negative integers, none repeated (``[0]`` in place of an invalid list)."""
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        problems.append(("seeds", f"expected a non-empty list of non-negative integers, got {seeds!r}"))
        return [0]
    if len(set(seeds)) != len(seeds):
        problems.append(("seeds", f"repeats a seed: {seeds!r}"))
    return seeds


def _settings(settings_in: Any, registry: Registry, problems: Problems) -> tuple[dict[str, dict], dict]:
    """Each suite's settings (defaults for those not given) and the execution settings, validated."""
    settings: dict[str, dict] = {}
    execution = validate(EXECUTION_SETTINGS, {})
    if not isinstance(settings_in, dict):
        problems.append(("settings", "expected a table"))
        settings_in = {}
    for sname, values in settings_in.items():
        key = f"settings.{sname}"
        if not isinstance(values, dict):
            problems.append((key, "expected a table"))
            continue
        if sname == "execution":
            schema = EXECUTION_SETTINGS
        elif registry.has("suite", sname):
            schema = registry.suite(sname).settings
        else:
            problems.append((key, unknown_name("suite", sname, ["execution", *registry.names("suite")])))
            continue
        checked, errors = check_values(schema, values, where=key)
        problems += [(exc.key, exc.reason) for exc in errors]
        if errors:
            continue
        if sname == "execution":
            execution = checked
        else:
            settings[sname] = checked
    for sname in registry.names("suite"):
        if sname not in settings:
            settings[sname] = validate(registry.suite(sname).settings, {})
    return settings, execution


def _tables(data: dict, problems: Problems) -> tuple[list[dict], list[dict]]:
    """The ``[[matrix]]`` and ``[[verification]]`` tables: at least one of either."""
    verification = data.get("verification", [])
    if not isinstance(verification, list) or not all(isinstance(v, dict) for v in verification):
        problems.append(("verification", "expected [[verification]] tables"))
        verification = []
    if "matrix" not in data and verification:
        return [], verification  # a suite file of verification benchmarks alone
    matrix = data.get("matrix")
    if not isinstance(matrix, list) or not matrix or not all(isinstance(m, dict) for m in matrix):
        problems.append(("matrix", "is required: one or more [[matrix]] tables (or [[verification]] tables)"))
        matrix = []
    return matrix, verification
