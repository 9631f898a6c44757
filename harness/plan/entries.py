"""The one parser of a suite-file table's lists: entries into components, with grids and paths.

``[[matrix]]`` and ``[[verification]]`` tables list the same kinds of things (methods, verifiers,
suites; models, datasets and backends in the matrix, benchmarks in verification tables). One
:class:`Lists` reads every list of both, so the same mistake gets the same message in either.
An entry is a name or a table with a ``name`` and parameters; a list-valued parameter expands into
a grid of components.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from harness.core.identity import Component
from harness.plan import pipeline
from harness.plugin.manager import Registry
from harness.plugin.params import Param, check_values, expand_grid, unknown_name

#: The kind of thing each list of a table names.
KIND_OF = {"models": "model", "datasets": "dataset", "methods": "method", "backends": "backend",
           "verifiers": "verifier"}
#: The host parameter every model takes.
WEIGHTS_PARAM = Param("weights", str, default="", grid=False, path="file",
                      help="a state_dict file (torch.save) to load instead of the reference weights")

#: The typed registry lookup of each kind a list may name.
_SPEC_OF: dict[str, Callable[[Registry, str], Any]] = {
    "model": Registry.model, "dataset": Registry.dataset, "method": Registry.method, "backend": Registry.backend,
}

Problems = list[tuple[str, str]]


def entry(item: Any, key: str, problems: Problems) -> tuple[str, dict] | None:
    """A list entry as ``(name, parameters)``; ``None`` (with a problem) if it is neither a name nor a table."""
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


def names(items: Any) -> list[str]:
    """Names in a list of names or tables (for a first look, before validation)."""
    if not isinstance(items, list):
        return []
    return [i if isinstance(i, str) else i.get("name") for i in items
            if isinstance(i, str) or (isinstance(i, dict) and isinstance(i.get("name"), str))]


def unknown(what: str, name: str, known: list[str]) -> str:
    """The message for a name nobody registered: the nearest registered name when one is close (``did you
    mean 'global-magnitude'?``, as for a misspelled hook), and the known ones."""
    return unknown_name(what, name, known, none="none registered")


@dataclass
class Lists:
    """Reads the lists of one suite file's tables into components, collecting every problem.

    ``base_dir`` is the suite file's folder: relative paths in parameters are resolved against it.
    """

    registry: Registry
    base_dir: Path | None
    problems: Problems

    def unknown_keys(self, table: Mapping, where: str, known: tuple[str, ...]) -> None:
        """A problem for each key of ``table`` that is not in ``known``."""
        for key in table:
            if key not in known:
                self.problems.append((f"{where}.{key}", unknown_name("key", key, known)))

    def required(self, items: Any, key: str, why: str = "") -> list:
        """``items`` if it is a non-empty list; otherwise a problem (``why`` says who needs it) and ``[]``."""
        if not isinstance(items, list) or not items:
            self.problems.append((key, f"is required: a non-empty list{why}"))
            return []
        return items

    def components(self, lname: str, items: list, key: str, **how: Any) -> list[Component]:
        """Every entry of the list ``lname`` (``models``, ``methods``, ``suites``...) as components.

        ``how`` is passed to the list's reader: ``on_benchmark`` for suites (which table the list
        is in), ``sources`` for benchmarks.
        """
        readers = {"methods": self._method, "verifiers": self._verifier, "suites": self._suite,
                   "benchmarks": self._benchmark}
        read = readers.get(lname) or partial(self._registered, kind=KIND_OF[lname])
        out: list[Component] = []
        for i, item in enumerate(items):
            out += read(item, f"{key}[{i}]", **how)
        return out

    # ------------------------------------------------------------------ one entry of each kind

    def _registered(self, item: Any, ikey: str, *, kind: str) -> list[Component]:
        """A model, dataset, method or backend entry: its parameters validated and expanded into a grid."""
        parsed = entry(item, ikey, self.problems)
        if parsed is None:
            return []
        name, values = parsed
        if not self.registry.has(kind, name):
            self.problems.append((ikey, unknown(kind, name, self.registry.names(kind))))
            return []
        schema = tuple(_SPEC_OF[kind](self.registry, name).params) + ((WEIGHTS_PARAM,) if kind == "model" else ())
        checked = self._checked(schema, values, ikey)
        if checked is None:
            return []
        if kind == "model" and not checked.get("weights"):
            checked.pop("weights", None)  # not set: the model's own weights (and no key in its identity)
        return [Component(name, point) for point in expand_grid(schema, checked)]

    def _method(self, item: Any, ikey: str) -> list[Component]:
        """A method entry: a registered method, or ``{ pipeline = [...] }`` composing several."""
        if isinstance(item, dict) and "pipeline" in item:
            extra = sorted(set(item) - {"pipeline"})
            if extra:
                self.problems.append((ikey, f"a pipeline entry takes only 'pipeline', not {', '.join(extra)}"))
                return []
            return [Component(n, p) for n, p in pipeline.expand(item["pipeline"], f"{ikey}.pipeline",
                                                                 self.registry, self.problems)]
        return self._registered(item, ikey, kind="method")

    def _verifier(self, item: Any, ikey: str) -> list[Component]:
        """A verifier entry, validated and expanded into a grid; path parameters resolved."""
        parsed = entry(item, ikey, self.problems)
        if parsed is None:
            return []
        name, values = parsed
        if not self.registry.has("verifier", name):
            self.problems.append((ikey, unknown("verifier", name, self.registry.names("verifier"))))
            return []
        if self.registry.has("backend", name):
            self.problems.append((ikey, f"verifier {name!r} has the name of a backend: their leaderboard rows "
                                  "would mix"))
            return []
        spec = self.registry.verifier(name)
        checked = self._checked(spec.params, values, ikey)
        if checked is None:
            return []
        return [Component(name, point) for point in expand_grid(spec.params, checked)]

    def _suite(self, item: Any, ikey: str, *, on_benchmark: bool) -> list[Component]:
        """A suite entry: a name (its settings live in ``[settings.NAME]``), in the table it belongs to."""
        parsed = entry(item, ikey, self.problems)
        if parsed is None:
            return []
        name, values = parsed
        if values:
            self.problems.append((ikey, f"suites take no parameters here; use [settings.{name}]"))
        if not self.registry.has("suite", name):
            self.problems.append((ikey, unknown("suite", name, self.registry.names("suite"))))
        elif self.registry.suite(name).on_benchmark and not on_benchmark:
            self.problems.append((ikey, f"suite {name} runs on verification benchmarks: list it in a "
                                  "[[verification]] table"))
        elif on_benchmark and not self.registry.suite(name).on_benchmark:
            self.problems.append((ikey, f"suite {name} does not run on verification benchmarks: list it in a "
                                  "[[matrix]] table"))
        else:
            return [Component(name, {})]
        return []

    def _benchmark(self, item: Any, ikey: str, *, sources: Mapping[str, Any]) -> list[Component]:
        """A benchmark entry: a source of :mod:`harness.verify.benchmarks` and its parameters."""
        parsed = entry(item, ikey, self.problems)
        if parsed is None:
            return []
        name, values = parsed
        source = sources.get(name)
        if source is None:
            self.problems.append((ikey, f"unknown benchmark source {name!r} (known: {', '.join(sources)})"))
            return []
        checked = self._checked(source.params, values, ikey)
        if checked is None:
            return []
        # An optional path left unset is dropped, so adding one to a source keeps existing identities.
        paths = {p.name for p in source.params if p.path}
        return [Component(name, {k: v for k, v in point.items() if not (k in paths and v == "")})
                for point in expand_grid(source.params, checked)]

    # ------------------------------------------------------------------ parameters

    def _checked(self, schema: tuple[Param, ...], values: dict, ikey: str) -> dict | None:
        """The entry's values checked (every bad one a problem, not only the first) and its paths
        (:meth:`_paths`; those of the values that passed are checked even when another value did not, so
        one ``harness run`` reports both); ``None`` when anything is wrong."""
        checked, errors = check_values(schema, values, where=ikey)
        self.problems += [(exc.key, exc.reason) for exc in errors]
        paths_ok = self._paths(schema, {k: v for k, v in values.items() if k in checked}, checked, ikey)
        return None if errors or not paths_ok else checked

    def _paths(self, schema: tuple[Param, ...], given: Mapping, checked: dict, ikey: str) -> bool:
        """Every path parameter written in the entry made absolute against the suite file's folder and
        checked (:func:`check_path`); ``False`` (with a problem each) if one does not pass."""
        ok = True
        for param in schema:
            value = checked.get(param.name)
            if not param.path or param.name not in given:
                continue  # not a path, or left at its default
            grid = isinstance(value, list)  # a grid over files: each one resolved and checked
            out = []
            for j, item in enumerate(value if grid else [value]):
                if not isinstance(item, str) or not item or _SCHEME.match(item):
                    out.append(item)  # not set, or package:NAME/sub and the like: the plugin resolves it
                    continue
                resolved, why = check_path(item, param.path, self.base_dir)
                if why:
                    self.problems.append((f"{ikey}.{param.name}" + (f"[{j}]" if grid else ""), why))
                    ok = False
                out.append(resolved or item)
            checked[param.name] = out if grid else out[0]
        return ok


#: A value such as ``package:NAME/sub``: a scheme of two or more letters, so never a drive letter.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def check_path(value: str, kind: str, base_dir: Path | None) -> tuple[str, str]:
    """``(absolute path, "")`` for a readable ``kind`` (``file``, ``folder`` or ``any``) or a file that may
    be created (``new``: its folder exists), else ``("", why not)``.

    A relative ``value`` is taken from ``base_dir`` (the suite file's folder; the working
    directory when there is no suite file), ``~`` from the home folder.
    """
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = (base_dir if base_dir is not None else Path.cwd()) / p
    if kind == "new":  # a file the plugin may write (ssh's known_hosts): only its folder must exist
        if p.is_dir():
            return "", f"is a folder, expected a file: {p}"
        if not p.parent.is_dir():
            return "", f"folder not found: {p.parent}"
        return str(p.parent.resolve() / p.name), ""
    if not p.exists():
        return "", f"{'path' if kind == 'any' else kind} not found: {p}"
    if kind == "file" and p.is_dir():
        return "", f"is a folder, expected a file: {p}"
    if kind == "folder" and not p.is_dir():
        return "", f"is a file, expected a folder: {p}"
    if not os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0)):
        return "", f"not readable: {p}"
    return str(p.resolve()), ""
