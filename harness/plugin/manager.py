"""The plugin host: discovery, loading and the registry of what plugins provide.

Discovery order: built-in plugins (the standard suites), installed
distributions through the ``harness`` entry-point group, then ``*.py`` files
from a directory named on the command line. ``HARNESS_DISABLE_PLUGINS=a,b``
blocks plugins by name. Any plugin that fails to import or register stops
everything with its name and distribution in the message: a method that
silently goes missing corrupts a leaderboard.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from harness.core.errors import UnknownName, UsageError
from harness.plugin import hookspecs
from harness.plugin.specs import (
    KINDS,
    BackendSpec,
    DatasetSpec,
    MethodSpec,
    ModelSpec,
    SpecError,
    SuiteSpec,
    VerifierSpec,
    suggest_name,
)

ENTRY_POINT_GROUP = "harness"
DISABLE_ENV = "HARNESS_DISABLE_PLUGINS"
#: Module names under which plugin files are imported (so pickled objects resolve in workers).
FILE_MODULE_PREFIX = "harness_plugin_file_"

#: Built-in plugins, registered exactly as external ones are (datasette's DEFAULT_PLUGINS).
DEFAULT_PLUGINS = (
    "harness.builtins.suites.accuracy",
    "harness.builtins.suites.latency",
    "harness.builtins.suites.size",
    "harness.builtins.suites.soundness",
    "harness.builtins.suites.verification",
    "harness.builtins.suites.robustness",
    "harness.builtins.vnncomp",
    "harness.builtins.dense",
)

#: hook name of each kind's registration hook
HOOKS = {kind: f"harness_register_{kind}s" for kind in KINDS}


class PluginError(UsageError):
    """A plugin failed to load or to register; the message names it, its distribution and what to change."""


def _without(info: PluginInfo) -> str:
    """How to run without a plugin, for the end of error messages."""
    hint = f"run without it with {DISABLE_ENV}={info.name}"
    if info.source == "entry point" and info.distribution:
        hint += f" (or pip uninstall {info.distribution})"
    return hint


def _raised_at(exc: BaseException) -> str:
    """`` (at file:line in function)`` of the frame that raised, or ``""``."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""


def _short(obj: Any, limit: int = 120) -> str:
    """``repr(obj)``, cut to ``limit`` characters for a message."""
    text = repr(obj)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _spec_hint(kind: str, spec: Any) -> str:
    """What to change when a plugin registered the wrong object through a kind's hook."""
    expected = KINDS[kind]
    for other, cls in KINDS.items():
        if isinstance(spec, cls):
            return (f"a {cls.__name__} is registered through {HOOKS[other]}: move this register() call into a "
                    f"@hookimpl def {HOOKS[other]}(register)")
    if isinstance(spec, (list, tuple)):
        return "call register() once per spec: for spec in specs: register(spec)"
    required = [f.name for f in dataclasses.fields(expected)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    args = ", ".join(f"{name}=..." for name in required)
    return f"build one: register({expected.__name__}({args})), with {expected.__name__} from harness.api"


@dataclass
class PluginInfo:
    """Where a plugin came from and what it registered."""

    name: str
    source: str  # "builtin" | "entry point" | "directory" | "file" | "extra"
    distribution: str | None = None
    version: str | None = None
    location: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name (dist version)`` for messages."""
        if self.distribution:
            return f'"{self.name}" ({self.distribution} {self.version})'
        return f'"{self.name}" ({self.source}{": " + self.location if self.location else ""})'

    def as_dict(self) -> dict:
        """JSON-able form for ``harness plugins --json``."""
        return {
            "name": self.name,
            "source": self.source,
            "distribution": self.distribution,
            "version": self.version,
            "location": self.location,
            "kinds": sorted(k for k, v in self.registered.items() if v),
            "registered": {k: v for k, v in sorted(self.registered.items()) if v},
        }


@dataclass
class Registered:
    """One registered thing with the plugin that registered it."""

    spec: Any
    plugin: PluginInfo


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Registered]] = {kind: {} for kind in KINDS}
        self.plugins: dict[str, PluginInfo] = {}

    def add(self, kind: str, spec: Any, plugin: PluginInfo) -> None:
        """Validate and add one spec; a duplicate name is an error naming both plugins."""
        expected = KINDS[kind]
        if not isinstance(spec, expected):
            raise PluginError(f"Plugin {plugin.label} registered {_short(spec)} through "
                              f"{HOOKS[kind]}, expected a harness.api.{expected.__name__}: {_spec_hint(kind, spec)}")
        try:
            spec.check()
        except SpecError as exc:
            raise PluginError(f"Plugin {plugin.label} registered an invalid {kind}: {exc}") from exc
        existing = self.items[kind].get(spec.name)
        if existing is not None:
            raise PluginError(f"{kind} {spec.name!r} is registered twice: by plugin "
                              f"{existing.plugin.label} and by plugin {plugin.label}. Names are unique per "
                              f"kind: rename one (the name= of its {expected.__name__}, e.g. "
                              f"{suggest_name(plugin.name + '-' + spec.name)!r}), or {_without(plugin)}")
        self.items[kind][spec.name] = Registered(spec, plugin)
        plugin.registered.setdefault(kind, []).append(spec.name)

    def get(self, kind: str, name: str) -> Registered:
        """The registered thing with its plugin; :class:`~harness.core.errors.UnknownName` lists the known names."""
        try:
            return self.items[kind][name]
        except KeyError:
            raise UnknownName(kind, name, sorted(self.items[kind])) from None

    def has(self, kind: str, name: str) -> bool:
        """Whether a ``kind`` named ``name`` is registered."""
        return name in self.items[kind]

    def names(self, kind: str) -> list[str]:
        """Sorted names of one kind."""
        return sorted(self.items[kind])

    def specs(self, kind: str) -> list[Any]:
        """Every registered spec of one kind, by name."""
        return [self.items[kind][n].spec for n in sorted(self.items[kind])]

    # Typed lookups: each raises UnknownName for a name nobody registered.
    def model(self, name: str) -> ModelSpec:
        """The registered model ``name``."""
        return self.get("model", name).spec

    def dataset(self, name: str) -> DatasetSpec:
        """The registered dataset ``name``."""
        return self.get("dataset", name).spec

    def method(self, name: str) -> MethodSpec:
        """The registered method ``name`` (a single method; pipelines are composed by :mod:`harness.plan.pipeline`)."""
        return self.get("method", name).spec

    def backend(self, name: str) -> BackendSpec:
        """The registered backend ``name``."""
        return self.get("backend", name).spec

    def suite(self, name: str) -> SuiteSpec:
        """The registered suite ``name``."""
        return self.get("suite", name).spec

    def verifier(self, name: str) -> VerifierSpec:
        """The registered verifier ``name``."""
        return self.get("verifier", name).spec

    def plugin_of(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered ``kind`` ``name``."""
        return self.get(kind, name).plugin


@dataclass
class Host:
    """A loaded plugin manager with its registry."""

    pm: pluggy.PluginManager
    registry: Registry
    plugins_dir: str | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specifications and nothing registered."""
    pm = pluggy.PluginManager("harness")
    pm.add_hookspecs(hookspecs)
    return pm


def disabled_plugins() -> set[str]:
    """Names in ``HARNESS_DISABLE_PLUGINS``."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _dist_of(ep: Any) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _unmarked_hooks(plugin: Any) -> list[str]:
    """Functions named like registration hooks that lack ``@hookimpl`` (pluggy would ignore them)."""
    marker = f"{ENTRY_POINT_GROUP}_impl"
    names = []
    for attr in dir(plugin):
        if attr.startswith("harness_register"):
            try:
                value = getattr(plugin, attr)
            except Exception:  # noqa: BLE001 - an attribute that cannot be read is not a hook
                continue
            if callable(value) and not hasattr(value, marker):
                names.append(attr)
    return names


def _register_module(pm: pluggy.PluginManager, module: ModuleType, info: PluginInfo,
                     infos: dict[str, PluginInfo]) -> None:
    if info.name in infos:
        other = infos[info.name]
        raise PluginError(f"Two plugins are named {info.name!r}: {other.label} and {info.label}. Plugin names "
                          f"are unique: rename one (its entry point's name, or its file's), or {_without(info)}")
    unmarked = _unmarked_hooks(module)
    if unmarked:
        raise PluginError(f"Plugin {info.label} defines {', '.join(unmarked)} without @hookimpl, so the harness "
                          "would never call it: decorate it with @hookimpl (from harness.api import hookimpl)")
    try:
        pm.register(module, name=info.name)
    except Exception as exc:  # pluggy validates hook signatures here
        raise PluginError(f"Error registering plugin {info.label}: {exc}. Registration hooks take exactly one "
                          "argument: @hookimpl def harness_register_<kind>s(register): ...") from exc
    infos[info.name] = info


def load_plugins(pm: pluggy.PluginManager, plugins_dir: str | os.PathLike | None = None,
                 *, entry_points_enabled: bool = True, extra: Iterable[tuple[str, Any]] = (),
                 exclude: Iterable[str] = ()) -> dict[str, PluginInfo]:
    """Register built-ins, entry points and files of ``plugins_dir`` on ``pm``, one at a time.

    ``extra`` adds (name, plugin object) pairs last (tests use it); ``exclude`` names entry
    points to leave out (a test registering an installed plugin itself). Returns the
    :class:`PluginInfo` of every plugin, by name.
    """
    exclude = set(exclude)
    blocked = disabled_plugins()
    infos: dict[str, PluginInfo] = {}
    for modname in DEFAULT_PLUGINS:
        name = modname.rsplit(".", 1)[-1]
        if name in blocked:
            continue
        from harness import __version__

        info = PluginInfo(name=name, source="builtin", distribution="compression-harness", version=__version__,
                          location=modname)
        _register_module(pm, importlib.import_module(modname), info, infos)

    if entry_points_enabled:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in blocked or ep.name in exclude:
                continue
            dist, version = _dist_of(ep)
            info = PluginInfo(name=ep.name, source="entry point", distribution=dist, version=version,
                              location=ep.value)
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(f"Error loading plugin {info.label}: {type(exc).__name__}: {exc}"
                                  f"{_raised_at(exc)}. Fix the import (heavy imports belong inside "
                                  f"functions), or {_without(info)}") from exc
            _register_module(pm, module, info, infos)

    if plugins_dir is not None:
        directory = Path(plugins_dir)
        if not directory.is_dir():
            raise PluginError(f"Plugins directory {str(directory)!r} does not exist or is not a directory")
        for path in sorted(directory.glob("*.py")):
            name = path.stem
            if name in blocked or name.startswith("_"):
                continue
            info = PluginInfo(name=name, source="directory", location=str(path))
            module = _load_file(path, info)
            _register_module(pm, module, info, infos)

    for name, obj in extra:
        if name in blocked:
            continue
        # A module loaded from a .py file (harness check-plugin FILE) is shown by its path.
        path = getattr(obj, "__file__", None) if getattr(obj, "__name__", "").startswith(FILE_MODULE_PREFIX) else None
        info = PluginInfo(name=name, source="file" if path else "extra",
                          location=path or getattr(obj, "__name__", repr(obj)))
        _register_module(pm, obj, info, infos)
    return infos


def _load_file(path: Path, info: PluginInfo) -> ModuleType:
    modname = f"{FILE_MODULE_PREFIX}{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"Error loading plugin {info.label}: not a Python module; plugin files end in .py")
    module = importlib.util.module_from_spec(spec)
    # Registered in sys.modules so pickled objects of the plugin resolve in workers too.
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(modname, None)
        raise PluginError(f"Error loading plugin {info.label}: {type(exc).__name__}: {exc}{_raised_at(exc)}. "
                          f"Fix the file, or {_without(info)}") from exc
    return module


def collect(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> Registry:
    """Call every registration hook plugin by plugin, so each spec is attributed to its plugin."""
    registry = Registry()
    registry.plugins = dict(infos)
    for kind, hook_name in HOOKS.items():
        caller = getattr(pm.hook, hook_name)
        # get_hookimpls() lists plugins in registration (discovery) order, so specs are attributed
        # and listed in the order plugins were found.
        for impl in caller.get_hookimpls():
            info = infos.get(impl.plugin_name) or PluginInfo(name=impl.plugin_name, source="unknown")

            def register(spec: Any, _kind: str = kind, _info: PluginInfo = info) -> None:
                registry.add(_kind, spec, _info)

            try:
                returned = impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"Plugin {info.label} failed in {hook_name}: {type(exc).__name__}: {exc}"
                                  f"{_raised_at(exc)}. Fix the error, or {_without(info)}") from exc
            if returned is not None:
                raise PluginError(f"Plugin {info.label}: {hook_name} returned {_short(returned)}; registration hooks "
                                  "return nothing: call register(spec) for each spec instead "
                                  f"(def {hook_name}(register): register(...))")
    return registry


def _unknown_hook_hint(pm: pluggy.PluginManager, plugin: Any) -> str:
    """Name the plugin's hooks that have no specification, with the nearest real hook for each."""
    known = sorted(HOOKS.values())
    parts = []
    for name, caller in vars(pm.hook).items():
        if name.startswith("_") or getattr(caller, "spec", None) is not None:
            continue
        if not any(impl.plugin is plugin for impl in caller.get_hookimpls()):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        parts.append(f"{name!r}" + (f": did you mean {close[0]!r}?" if close else ""))
    return (f"{'; '.join(parts) or 'an unknown hook'}. The hooks are {', '.join(known)} "
            "(documented in harness.plugin.hookspecs)")


def load_host(plugins_dir: str | os.PathLike | None = None, *, entry_points_enabled: bool = True,
              extra: Iterable[tuple[str, Any]] = (), exclude: Iterable[str] = ()) -> Host:
    """Load every plugin and collect what they register: the one call a command needs.

    ``extra`` and ``exclude`` are those of :func:`load_plugins`.
    """
    pm = get_plugin_manager()
    infos = load_plugins(pm, plugins_dir, entry_points_enabled=entry_points_enabled, extra=extra, exclude=exclude)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        # pluggy's PluginValidationError carries the plugin object (.plugin), not its name.
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        label = infos[name].label if name in infos else repr(name)
        raise PluginError(f"Plugin {label} implements an unknown hook (misspelled?): "
                          f"{_unknown_hook_hint(pm, exc.plugin)}") from exc
    registry = collect(pm, infos)
    return Host(pm=pm, registry=registry, plugins_dir=str(plugins_dir) if plugins_dir else None)
