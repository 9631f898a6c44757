"""Suite files (TOML): parse, validate against the registry, expand into cells.

Every problem is reported before anything runs, each naming the file, the key
and the reason. A list-valued parameter of any model, dataset, method or
backend expands into a grid.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import pipeline
from harness.params import Param, ParamError, expand_grid, validate
from harness.plugins import Registry

TOP_KEYS = {"name", "description", "version", "seeds", "matrix", "settings"}
MATRIX_KEYS = ("models", "datasets", "methods", "backends", "suites")
KIND_OF = {"models": "model", "datasets": "dataset", "methods": "method", "backends": "backend"}

#: Host-level settings under ``[settings.execution]``.
EXECUTION_SETTINGS = (
    Param("timeout_s", float, default=600.0, min=1.0, grid=False,
          help="wall-clock limit of one cell, artifact build included"),
    Param("memory_limit_mb", int, default=0, min=0, grid=False,
          help="address-space limit of a cell's worker process (0: none)"),
)

#: The host parameter every model takes.
WEIGHTS_PARAM = Param("weights", str, default="", grid=False,
                      help="a state_dict file (torch.save) to load instead of the reference weights")

BASELINE_METHOD = "dense"


class SuiteFileError(ValueError):
    """A suite file is invalid. ``problems`` holds (key, reason) pairs."""

    def __init__(self, path: str, problems: list[tuple[str, str]]):
        self.path = path
        self.problems = problems
        lines = [f"{path}: {key}: {reason}" if key else f"{path}: {reason}" for key, reason in problems]
        super().__init__("\n".join(lines))


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces; the basis of every hash and stored params."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj: Any, n: int = 16) -> str:
    """Short sha256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Component:
    """A named plugin thing with one grid point of its parameters."""

    name: str
    params: dict

    def as_dict(self) -> dict:
        """``{"name": ..., "params": {...}}``."""
        return {"name": self.name, "params": self.params}


@dataclass
class Cell:
    """One unit of work: (model, dataset, method + params, seed) x backend x suite."""

    model: Component
    dataset: Component
    method: Component
    seed: int
    backend: Component | None
    suite: str
    skip_reason: str | None = None
    implicit: bool = False  # added by the planner as a baseline

    @property
    def identity(self) -> dict:
        """What identifies the cell across runs (the leaderboard's notion of "the same cell")."""
        return {
            "model": self.model.name, "model_params": self.model.params,
            "dataset": self.dataset.name, "dataset_params": self.dataset.params,
            "method": self.method.name, "method_params": self.method.params,
            "seed": self.seed,
            "backend": self.backend.name if self.backend else None,
            "backend_params": self.backend.params if self.backend else {},
            "suite": self.suite,
        }

    @property
    def key(self) -> str:
        """Hash of :attr:`identity`."""
        return digest(self.identity)

    @property
    def artifact_identity(self) -> dict:
        """What the artifact depends on at plan time (the worker adds data and weights hashes)."""
        return {"model": self.model.as_dict(), "dataset": self.dataset.as_dict(),
                "method": self.method.as_dict(), "seed": self.seed}

    @property
    def artifact_group(self) -> str:
        """Cells with the same group share one artifact."""
        return digest(self.artifact_identity)

    def baseline_identity(self) -> dict:
        """The identity of the dense cell this one compares against."""
        ident = dict(self.identity)
        ident["method"], ident["method_params"] = BASELINE_METHOD, {}
        return ident


@dataclass
class Plan:
    """A validated suite file expanded into cells."""

    name: str
    path: str
    text: str
    sha256: str
    seeds: list[int]
    cells: list[Cell]
    settings: dict[str, dict]
    execution: dict
    description: str = ""
    version: str = ""
    problems: list[str] = field(default_factory=list)


def load_plan(path: str | Path, registry: Registry) -> Plan:
    """Read, validate and expand a suite file; raise :class:`SuiteFileError` listing every problem."""
    p = Path(path)
    shown = str(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SuiteFileError(shown, [("", f"cannot read the suite file: {exc.strerror or exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteFileError(shown, [("", f"invalid TOML: {exc}")]) from None
    return plan_from_dict(data, registry, path=shown, text=text, base_dir=p.parent)


def _entry(item: Any, key: str, problems: list) -> tuple[str, dict] | None:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict):
        if "name" not in item:
            problems.append((key, "a table entry needs a 'name'"))
            return None
        name = item["name"]
        if not isinstance(name, str):
            problems.append((f"{key}.name", f"expected a string, got {type(name).__name__} {name!r}"))
            return None
        return name, {k: v for k, v in item.items() if k != "name"}
    problems.append((key, f"expected a name or a table with a 'name', got {type(item).__name__} {item!r}"))
    return None


def plan_from_dict(data: dict, registry: Registry, *, path: str = "<suite>", text: str | None = None,
                   base_dir: Path | None = None) -> Plan:
    """Validate the parsed suite file ``data`` and expand it into a :class:`Plan`."""
    problems: list[tuple[str, str]] = []
    text = text if text is not None else canonical(data)
    for key in data:
        if key not in TOP_KEYS:
            problems.append((key, f"unknown key (known: {', '.join(sorted(TOP_KEYS))})"))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.append(("name", "is required and must be a non-empty string"))
    for key in ("description", "version"):
        if key in data and not isinstance(data[key], str):
            problems.append((key, f"expected a string, got {type(data[key]).__name__}"))
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        problems.append(("seeds", f"expected a non-empty list of non-negative integers, got {seeds!r}"))
        seeds = [0]
    elif len(set(seeds)) != len(seeds):
        problems.append(("seeds", f"repeats a seed: {seeds!r}"))

    settings_in = data.get("settings", {})
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
        elif sname in registry.items["suite"]:
            schema = registry.items["suite"][sname].spec.settings
        else:
            known = ", ".join(["execution", *registry.names("suite")])
            problems.append((key, f"unknown suite {sname!r} (known: {known})"))
            continue
        try:
            checked = validate(schema, values, where=key)
        except ParamError as exc:
            problems.append((exc.key, exc.reason))
            continue
        if sname == "execution":
            execution = checked
        else:
            settings[sname] = checked
    for sname, reg in registry.items["suite"].items():
        if sname not in settings:
            settings[sname] = validate(reg.spec.settings, {})

    matrix = data.get("matrix")
    if not isinstance(matrix, list) or not matrix or not all(isinstance(m, dict) for m in matrix):
        problems.append(("matrix", "is required: one or more [[matrix]] tables"))
        matrix = []

    cells: list[Cell] = []
    for mi, entry in enumerate(matrix):
        where = f"matrix[{mi}]"
        for key in entry:
            if key not in MATRIX_KEYS:
                problems.append((f"{where}.{key}", f"unknown key (known: {', '.join(MATRIX_KEYS)})"))
        expanded: dict[str, list[Component]] = {}
        for mkey in MATRIX_KEYS:
            items = entry.get(mkey)
            if not isinstance(items, list) or not items:
                problems.append((f"{where}.{mkey}", "is required: a non-empty list"))
                expanded[mkey] = []
                continue
            comps: list[Component] = []
            for ii, item in enumerate(items):
                ikey = f"{where}.{mkey}[{ii}]"
                if mkey == "methods" and isinstance(item, dict) and "pipeline" in item:
                    extra = sorted(set(item) - {"pipeline"})
                    if extra:
                        problems.append((ikey, f"a pipeline entry takes only 'pipeline', not {', '.join(extra)}"))
                        continue
                    comps += [Component(n, p) for n, p in pipeline.expand(item["pipeline"], f"{ikey}.pipeline",
                                                                            registry, problems)]
                    continue
                parsed = _entry(item, ikey, problems)
                if parsed is None:
                    continue
                iname, values = parsed
                if mkey == "suites":
                    if values:
                        problems.append((ikey, "suites take no parameters here; use [settings."
                                         f"{iname}]"))
                    if iname not in registry.items["suite"]:
                        problems.append((ikey, f"unknown suite {iname!r} (known: "
                                         f"{', '.join(registry.names('suite'))})"))
                    else:
                        comps.append(Component(iname, {}))
                    continue
                kind = KIND_OF[mkey]
                reg = registry.items[kind].get(iname)
                if reg is None:
                    known = ", ".join(registry.names(kind)) or "none registered"
                    problems.append((ikey, f"unknown {kind} {iname!r} (known: {known})"))
                    continue
                schema = tuple(reg.spec.params) + ((WEIGHTS_PARAM,) if kind == "model" else ())
                try:
                    checked = validate(schema, values, where=ikey)
                except ParamError as exc:
                    problems.append((exc.key, exc.reason))
                    continue
                if kind == "model" and checked.get("weights"):
                    wpath = Path(checked["weights"])
                    if not wpath.is_absolute() and base_dir is not None:
                        wpath = (base_dir / wpath)
                    if not wpath.is_file():
                        problems.append((f"{ikey}.weights", f"file not found: {wpath}"))
                        continue
                    checked["weights"] = str(wpath.resolve())
                if kind == "model" and not checked.get("weights"):
                    checked.pop("weights", None)
                for point in expand_grid(schema, checked):
                    comps.append(Component(iname, point))
            expanded[mkey] = comps
        if any(not expanded[k] for k in MATRIX_KEYS):
            continue
        for model in expanded["models"]:
            for dataset in expanded["datasets"]:
                for method in expanded["methods"]:
                    for seed in seeds:
                        for suite in expanded["suites"]:
                            sspec = registry.items["suite"][suite.name].spec
                            backends = expanded["backends"] if sspec.per_backend else [None]
                            for backend in backends:
                                cells.append(Cell(model, dataset, method, seed, backend, suite.name))
    if problems:
        raise SuiteFileError(path, problems)

    cells = _add_baselines(_dedupe(cells), registry)
    _mark_incompatible(cells, registry)
    return Plan(name=name, path=path, text=text, sha256=hashlib.sha256(text.encode()).hexdigest(),
                seeds=list(seeds), cells=cells, settings=settings, execution=execution,
                description=data.get("description", ""), version=data.get("version", ""))


def _dedupe(cells: list[Cell]) -> list[Cell]:
    seen: set[str] = set()
    out = []
    for c in cells:
        if c.key not in seen:
            seen.add(c.key)
            out.append(c)
    return out


def _add_baselines(cells: list[Cell], registry: Registry) -> list[Cell]:
    """Add the dense cells that suites with ``needs_baseline`` compare against; order them first."""
    have = {c.key for c in cells}
    added = []
    if BASELINE_METHOD in registry.items["method"]:
        for c in cells:
            if c.method.name == BASELINE_METHOD:
                continue
            if not registry.items["suite"][c.suite].spec.needs_baseline:
                continue
            base = Cell(c.model, c.dataset, Component(BASELINE_METHOD, {}), c.seed, c.backend, c.suite,
                        implicit=True)
            if base.key not in have:
                have.add(base.key)
                added.append(base)
    ordered = added + cells
    # Dense first (baselines exist before the cells that compare with them), then by artifact,
    # so each artifact is built once and then reused.
    group_order: dict[str, int] = {}
    for c in ordered:
        group_order.setdefault(c.artifact_group, len(group_order))
    return sorted(ordered, key=lambda c: (c.method.name != BASELINE_METHOD, group_order[c.artifact_group]))


def _mark_incompatible(cells: list[Cell], registry: Registry) -> None:
    """Turn combinations that cannot run into explicit skips, with the reason."""
    availability: dict[str, tuple[bool, str]] = {}
    for c in cells:
        method = pipeline.resolve(registry, c.method.name, c.method.params)
        model = registry.items["model"][c.model.name].spec
        if not set(model.provides) & set(method.consumes):
            c.skip_reason = (f"method {c.method.name} works on {'/'.join(method.consumes)} models; "
                             f"model {c.model.name} is {'/'.join(model.provides)}")
            continue
        if c.backend is None:
            continue
        backend = registry.items["backend"][c.backend.name].spec
        method_produces = method.produces
        if c.backend.name not in availability:
            try:
                availability[c.backend.name] = tuple(backend.available())  # type: ignore[assignment]
            except Exception as exc:  # a broken probe is a reason, not a crash
                availability[c.backend.name] = (False, f"available() raised {type(exc).__name__}: {exc}")
        ok, reason = availability[c.backend.name]
        if not ok:
            c.skip_reason = f"backend {c.backend.name} is not available: {reason}"
            continue
        if model.provides == ("onnx",):
            # A model that is an ONNX file yields ONNX artifacts whatever the method.
            method_produces = ("onnx",)
        if not set(backend.accepts) & set(method_produces):
            c.skip_reason = (f"backend {c.backend.name} runs {'/'.join(backend.accepts)} artifacts; "
                             f"method {c.method.name} produces {'/'.join(method_produces)}")
