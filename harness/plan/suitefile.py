"""Suite files (TOML): parse, validate against the registry, expand into cells.

Every problem is reported before anything runs, each naming the file, the key
and the reason. A list-valued parameter of any model, dataset, method or
backend expands into a grid.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError
from harness.core.identity import Component, canonical, digest
from harness.plan import pipeline
from harness.plugin.manager import Registry
from harness.plugin.params import Param, ParamError, expand_grid, validate

TOP_KEYS = {"name", "description", "version", "seeds", "matrix", "settings", "verification"}
MATRIX_KEYS = ("models", "datasets", "methods", "backends", "verifiers", "suites")
#: Keys a [[matrix]] table may leave out: backends when no suite runs per backend, verifiers when
#: none runs per verifier.
OPTIONAL_MATRIX_KEYS = ("backends", "verifiers")
VERIFICATION_KEYS = ("benchmarks", "methods", "verifiers", "suites")
KIND_OF = {"models": "model", "datasets": "dataset", "methods": "method", "backends": "backend",
           "verifiers": "verifier"}
#: Verifier parameters that name a folder: resolved against the suite file's folder, checked to exist.
PATH_PARAMS = ("tool",)
#: The dataset column of verification-benchmark cells: their instances are VNN-LIB properties.
BENCHMARK_DATASET = "vnnlib"

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


@dataclass
class Cell:
    """One unit of work: (model, dataset, method + params, seed) x backend (or verifier) x suite.

    A cell of a suite that runs per verifier has ``verifier`` instead of ``backend``; the store and
    the leaderboard keep it in the ``backend`` column (a verifier is what executes the artifact
    there). A verification-benchmark cell (``benchmark``) has the benchmark in ``model`` and
    ``vnnlib`` as its dataset.
    """

    model: Component
    dataset: Component
    method: Component
    seed: int
    backend: Component | None
    suite: str
    skip_reason: str | None = None
    implicit: bool = False  # added by the planner as a baseline
    verifier: Component | None = None
    benchmark: bool = False

    @property
    def executor(self) -> Component | None:
        """The backend or verifier that runs the cell (``None`` for per-artifact suites)."""
        return self.backend if self.backend is not None else self.verifier

    @property
    def identity(self) -> dict:
        """What identifies the cell across runs (the leaderboard's notion of "the same cell")."""
        executor = self.executor
        return {
            "model": self.model.name, "model_params": self.model.params,
            "dataset": self.dataset.name, "dataset_params": self.dataset.params,
            "method": self.method.name, "method_params": self.method.params,
            "seed": self.seed,
            "backend": executor.name if executor else None,
            "backend_params": executor.params if executor else {},
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

    verification = data.get("verification", [])
    if not isinstance(verification, list) or not all(isinstance(v, dict) for v in verification):
        problems.append(("verification", "expected [[verification]] tables"))
        verification = []
    if "matrix" not in data and verification:
        matrix = []  # a suite file of verification benchmarks alone
    else:
        matrix = data.get("matrix")
        if not isinstance(matrix, list) or not matrix or not all(isinstance(m, dict) for m in matrix):
            problems.append(("matrix", "is required: one or more [[matrix]] tables (or [[verification]] tables)"))
            matrix = []

    cells: list[Cell] = []
    for mi, entry in enumerate(matrix):
        where = f"matrix[{mi}]"
        for key in entry:
            if key not in MATRIX_KEYS:
                problems.append((f"{where}.{key}", f"unknown key (known: {', '.join(MATRIX_KEYS)})"))
        listed = [registry.items["suite"][n].spec for n in _names(entry.get("suites")) if n in registry.items["suite"]]
        needed = {"backends": any(not sp.per_verifier and sp.per_backend for sp in listed),
                  "verifiers": any(sp.per_verifier for sp in listed)}
        expanded: dict[str, list[Component]] = {}
        for mkey in MATRIX_KEYS:
            items = entry.get(mkey)
            if mkey in OPTIONAL_MATRIX_KEYS and not needed[mkey]:
                if mkey == "verifiers" and items is not None:
                    problems.append((f"{where}.{mkey}", "no suite of this table runs per verifier (the "
                                     "robustness suite does; verification runs in [[verification]] tables)"))
                if items is None:
                    expanded[mkey] = []
                    continue
            if not isinstance(items, list) or not items:
                why = ""
                if mkey in OPTIONAL_MATRIX_KEYS:
                    runs = [sp.name for sp in listed if (sp.per_verifier if mkey == "verifiers" else
                                                         sp.per_backend and not sp.per_verifier)]
                    why = f" (suite {', '.join(runs)} runs per {mkey[:-1]})"
                problems.append((f"{where}.{mkey}", f"is required: a non-empty list{why}"))
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
                    elif registry.items["suite"][iname].spec.on_benchmark:
                        problems.append((ikey, f"suite {iname} runs on verification benchmarks: list it in a "
                                         "[[verification]] table"))
                    else:
                        comps.append(Component(iname, {}))
                    continue
                kind = KIND_OF[mkey]
                reg = registry.items[kind].get(iname)
                if reg is None:
                    known = ", ".join(registry.names(kind)) or "none registered"
                    problems.append((ikey, f"unknown {kind} {iname!r} (known: {known})"))
                    continue
                if kind == "verifier":
                    comps += _verifier_components(iname, values, ikey, registry, base_dir, problems)
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
        if any(not expanded[k] for k in MATRIX_KEYS if k not in OPTIONAL_MATRIX_KEYS or needed[k]):
            continue
        for model in expanded["models"]:
            for dataset in expanded["datasets"]:
                for method in expanded["methods"]:
                    for seed in seeds:
                        for suite in expanded["suites"]:
                            sspec = registry.items["suite"][suite.name].spec
                            if sspec.per_verifier:
                                for verifier in expanded["verifiers"]:
                                    cells.append(Cell(model, dataset, method, seed, None, suite.name,
                                                      verifier=verifier))
                                continue
                            backends = expanded["backends"] if sspec.per_backend else [None]
                            for backend in backends:
                                cells.append(Cell(model, dataset, method, seed, backend, suite.name))
    for vi, entry in enumerate(verification):
        cells += _verification_cells(entry, f"verification[{vi}]", registry, seeds, base_dir, problems)
    if problems:
        raise SuiteFileError(path, problems)

    cells = _add_baselines(_dedupe(cells), registry)
    _mark_incompatible(cells, registry)
    return Plan(name=name, path=path, text=text, sha256=hashlib.sha256(text.encode()).hexdigest(),
                seeds=list(seeds), cells=cells, settings=settings, execution=execution,
                description=data.get("description", ""), version=data.get("version", ""))


def _names(items: Any) -> list[str]:
    """Names in a list of names or tables (for a first look, before validation)."""
    if not isinstance(items, list):
        return []
    return [i if isinstance(i, str) else i.get("name") for i in items
            if isinstance(i, str) or (isinstance(i, dict) and isinstance(i.get("name"), str))]


def _resolve_path(value: str, key: str, base_dir: Path | None, problems: list) -> str | None:
    """A path parameter made absolute against the suite file's folder; ``None`` (with a problem) if missing."""
    p = Path(value).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if not p.exists():
        problems.append((key, f"not found: {p}"))
        return None
    return str(p.resolve())


def _verifier_components(name: str, values: dict, key: str, registry: Registry, base_dir: Path | None,
                         problems: list) -> list[Component]:
    """A verifier entry, validated and expanded into a grid; path parameters resolved."""
    spec = registry.items["verifier"][name].spec
    if name in registry.items["backend"]:
        problems.append((key, f"verifier {name!r} has the name of a backend: their leaderboard rows would mix"))
        return []
    try:
        checked = validate(spec.params, values, where=key)
    except ParamError as exc:
        problems.append((exc.key, exc.reason))
        return []
    for pname in PATH_PARAMS:
        if isinstance(checked.get(pname), str) and checked[pname]:
            resolved = _resolve_path(checked[pname], f"{key}.{pname}", base_dir, problems)
            if resolved is None:
                return []
            checked[pname] = resolved
    return [Component(name, point) for point in expand_grid(spec.params, checked)]


def _verification_cells(entry: dict, where: str, registry: Registry, seeds: list[int], base_dir: Path | None,
                        problems: list) -> list[Cell]:
    """Cells of one ``[[verification]]`` table: benchmark x method x seed x verifier x suite."""
    from harness.verify.benchmarks import sources

    known_sources = sources()
    for key in entry:
        if key not in VERIFICATION_KEYS:
            problems.append((f"{where}.{key}", f"unknown key (known: {', '.join(VERIFICATION_KEYS)})"))
    before = len(problems)
    lists: dict[str, list] = {}
    for key, default in (("benchmarks", None), ("verifiers", None), ("methods", ["dense"]),
                         ("suites", ["verification"])):
        items = entry.get(key, default)
        if not isinstance(items, list) or not items:
            problems.append((f"{where}.{key}", "is required: a non-empty list"))
            items = []
        lists[key] = items
    benchmarks: list[Component] = []
    for i, item in enumerate(lists["benchmarks"]):
        ikey = f"{where}.benchmarks[{i}]"
        parsed = _entry(item, ikey, problems)
        if parsed is None:
            continue
        bname, values = parsed
        source = known_sources.get(bname)
        if source is None:
            problems.append((ikey, f"unknown benchmark source {bname!r} (known: {', '.join(known_sources)})"))
            continue
        try:
            checked = validate(source.params, values, where=ikey)
        except ParamError as exc:
            problems.append((exc.key, exc.reason))
            continue
        ok = True
        for pname in source.paths:
            resolved = _resolve_path(checked[pname], f"{ikey}.{pname}", base_dir, problems)
            ok = ok and resolved is not None
            checked[pname] = resolved
        if ok:
            benchmarks += [Component(bname, point) for point in expand_grid(source.params, checked)]
    verifiers: list[Component] = []
    for i, item in enumerate(lists["verifiers"]):
        ikey = f"{where}.verifiers[{i}]"
        parsed = _entry(item, ikey, problems)
        if parsed is None:
            continue
        vname, values = parsed
        if vname not in registry.items["verifier"]:
            known = ", ".join(registry.names("verifier")) or "none registered"
            problems.append((ikey, f"unknown verifier {vname!r} (known: {known})"))
            continue
        verifiers += _verifier_components(vname, values, ikey, registry, base_dir, problems)
    methods: list[Component] = []
    for i, item in enumerate(lists["methods"]):
        ikey = f"{where}.methods[{i}]"
        if isinstance(item, dict) and "pipeline" in item:
            methods += [Component(n, p) for n, p in pipeline.expand(item["pipeline"], f"{ikey}.pipeline",
                                                                     registry, problems)]
            continue
        parsed = _entry(item, ikey, problems)
        if parsed is None:
            continue
        mname, values = parsed
        reg = registry.items["method"].get(mname)
        if reg is None:
            problems.append((ikey, f"unknown method {mname!r} (known: "
                             f"{', '.join(registry.names('method')) or 'none registered'})"))
            continue
        try:
            checked = validate(reg.spec.params, values, where=ikey)
        except ParamError as exc:
            problems.append((exc.key, exc.reason))
            continue
        methods += [Component(mname, point) for point in expand_grid(reg.spec.params, checked)]
    suites: list[str] = []
    for i, item in enumerate(lists["suites"]):
        ikey = f"{where}.suites[{i}]"
        if not isinstance(item, str):
            problems.append((ikey, "expected a suite name"))
            continue
        reg = registry.items["suite"].get(item)
        if reg is None:
            problems.append((ikey, f"unknown suite {item!r} (known: {', '.join(registry.names('suite'))})"))
        elif not reg.spec.on_benchmark:
            problems.append((ikey, f"suite {item} does not run on verification benchmarks: list it in a "
                             "[[matrix]] table"))
        else:
            suites.append(item)
    if len(problems) > before:
        return []
    dataset = Component(BENCHMARK_DATASET, {})
    return [Cell(bench, dataset, method, seed, None, suite, verifier=verifier, benchmark=True)
            for bench in benchmarks for method in methods for seed in seeds for suite in suites
            for verifier in verifiers]


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
                        implicit=True, verifier=c.verifier, benchmark=c.benchmark)
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
        if c.verifier is not None:
            c.skip_reason = _verifier_skip(c, registry)
            continue
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


def _verifier_skip(cell: Cell, registry: Registry) -> str | None:
    """Why a verifier cell cannot run (unavailable verifier, a method without ONNX), or ``None``."""
    spec = registry.items["verifier"][cell.verifier.name].spec
    try:
        ok, reason = spec.available(cell.verifier.params)
    except Exception as exc:  # a broken probe is a reason, not a crash
        ok, reason = False, f"available() raised {type(exc).__name__}: {exc}"
    if not ok:
        return f"verifier {cell.verifier.name} is not available: {reason}"
    if not cell.benchmark:
        method = pipeline.resolve(registry, cell.method.name, cell.method.params)
        model = registry.items["model"][cell.model.name].spec
        if not set(model.provides) & set(method.consumes):
            return (f"method {cell.method.name} works on {'/'.join(method.consumes)} models; "
                    f"model {cell.model.name} is {'/'.join(model.provides)}")
        if "onnx" not in method.produces and model.provides != ("onnx",):
            return (f"verifiers read ONNX networks; method {cell.method.name} produces "
                    f"{'/'.join(method.produces)}")
    return None
