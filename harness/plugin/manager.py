"""The plugin host: discovery and loading; what the plugins register is collected into a
:class:`~harness.plugin.registry.Registry` (re-exported here).

Discovery order: built-in plugins (the standard suites), installed
distributions through the ``harness`` entry-point group, then ``*.py`` files
from a directory named on the command line. ``HARNESS_DISABLE_PLUGINS=a,b``
blocks plugins by name. Any plugin that fails to import or register stops
everything with its name and distribution in the message: a method that
silently goes missing corrupts a leaderboard.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from harness.core.errors import describe_exception, exception_text
from harness.core.safeload import trust_package
from harness.plugin import hookspecs
from harness.plugin.registry import (
    DISABLE_ENV,
    HOOKS,
    PluginError,
    PluginInfo,
    Registered,
    Registry,
    short,
    without,
)

ENTRY_POINT_GROUP = "harness"
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
    "harness.builtins.suites.robustness_shift",
    "harness.builtins.suites.energy",
    "harness.builtins.vnncomp",
    "harness.builtins.dense",
)

#: The host's interface; the registry's names are re-exported, so ``from harness.plugin.manager import
#: Registry, PluginError`` keeps working.
__all__ = ["DEFAULT_PLUGINS", "DISABLE_ENV", "ENTRY_POINT_GROUP", "FILE_MODULE_PREFIX", "HOOKS", "Host", "PluginError",
           "PluginInfo", "Registered", "Registry", "collect", "disabled_plugins", "get_plugin_manager", "load_host",
           "load_plugins"]


def _raised_at(exc: BaseException) -> str:
    """`` (at file:line in function)`` of the frame that raised, or ``""``."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""


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
    """Functions named like registration hooks (or close to one: ``harness_regster_methods``) that lack
    ``@hookimpl`` (pluggy would ignore them)."""
    marker = f"{ENTRY_POINT_GROUP}_impl"
    hooks = list(HOOKS.values())
    names = []
    for attr in dir(plugin):
        if attr.startswith("harness_register") or (
                attr.startswith("harness_") and difflib.get_close_matches(attr, hooks, n=1, cutoff=0.8)):
            try:
                value = getattr(plugin, attr)
            except Exception:  # noqa: BLE001 - an attribute that cannot be read is not a hook
                continue
            if callable(value) and not hasattr(value, marker):
                names.append(attr)
    return names


#: Where authors read the hooks: the public API's module of hook specifications (``help(harness.api.hookspecs)``).
HOOKS_MANUAL = "harness.api.hookspecs"


def _unmarked_fix(unmarked: list[str]) -> str:
    """What to do about functions that look like hooks but lack ``@hookimpl``: decorate a real hook; rename a
    misspelled one as well (decorating it alone would only lead to the "unknown hook" error)."""
    known = sorted(HOOKS.values())
    fixes = []
    for name in unmarked:
        if name in known:
            fixes.append(f"decorate {name} with @hookimpl")
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            fixes.append(f"{name} is no hook either (misspelled?): rename it {close[0]} and decorate it with "
                         "@hookimpl")
        else:
            fixes.append(f"{name} is no hook either: rename it after one of {', '.join(known)} and decorate it "
                         "with @hookimpl, or give a helper a name that does not start with harness_register")
    return "; ".join(fixes)


#: ``@hookimpl`` options that registration hooks do not accept (see "tryfirst, trylast and hook wrappers"
#: in :mod:`harness.plugin.hookspecs`): there is no result to order or wrap.
ORDERING_OPTIONS = ("tryfirst", "trylast", "hookwrapper", "wrapper")


def _ordering_options(plugin: Any) -> list[str]:
    """``hook(option=True)`` for each registration hook of ``plugin`` marked with an ordering option."""
    marker = f"{ENTRY_POINT_GROUP}_impl"
    found = []
    for attr in dir(plugin):
        try:
            opts = getattr(getattr(plugin, attr), marker, None)
        except Exception:  # noqa: BLE001 - an attribute that cannot be read is not a hook
            continue
        if not isinstance(opts, dict):
            continue
        hook = opts.get("specname") or attr
        used = [o for o in ORDERING_OPTIONS if opts.get(o)]
        if hook in HOOKS.values() and used:
            found.append(f"{hook}({', '.join(f'{o}=True' for o in used)})")
    return found


def _register_module(pm: pluggy.PluginManager, module: ModuleType, info: PluginInfo,
                     infos: dict[str, PluginInfo]) -> None:
    if info.name in infos:
        other = infos[info.name]
        raise PluginError(f"Two plugins are named {info.name!r}: {other.label} and {info.label}. Plugin names "
                          f"are unique: rename one (its entry point's name, or its file's), or {without(info)}",
                          plugin=info.label)
    unmarked = _unmarked_hooks(module)
    if unmarked:
        raise PluginError(f"Plugin {info.label} defines {', '.join(unmarked)} without @hookimpl, so the harness "
                          f"would never call it: {_unmarked_fix(unmarked)} (from harness.api import hookimpl; "
                          f"the hooks are documented in {HOOKS_MANUAL})", plugin=info.label)
    ordered = _ordering_options(module)
    if ordered:
        raise PluginError(f"Plugin {info.label} marks {', '.join(ordered)} with @hookimpl options that registration "
                          "hooks do not take: every plugin's registrations count and a name is registered once, so "
                          f"there is nothing to run first, last or around. Write a plain @hookimpl (see "
                          f"{HOOKS_MANUAL}), or " + without(info), plugin=info.label)
    # Classes of a plugin's package may appear in the artifacts it builds (harness.core.safeload).
    trust_package(getattr(module, "__name__", None) or type(module).__module__)
    try:
        pm.register(module, name=info.name)
    except Exception as exc:  # pluggy validates hook signatures here
        raise PluginError(f"Error registering plugin {info.label}: {exception_text(exc)}. Registration hooks take "
                          "exactly one argument: @hookimpl def harness_register_<kind>s(register): ...",
                          plugin=info.label) from exc
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
                raise PluginError(f"Error loading plugin {info.label}: {describe_exception(exc)}"
                                  f"{_raised_at(exc)}. Fix the import (heavy imports belong inside "
                                  f"functions), or {without(info)}", plugin=info.label) from exc
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
        raise PluginError(f"Error loading plugin {info.label}: not a Python module; plugin files end in .py",
                          plugin=info.label)
    module = importlib.util.module_from_spec(spec)
    # Registered in sys.modules so pickled objects of the plugin resolve in workers too.
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(modname, None)
        raise PluginError(f"Error loading plugin {info.label}: {describe_exception(exc)}{_raised_at(exc)}. "
                          f"Fix the file, or {without(info)}", plugin=info.label) from exc
    return module


def collect(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> Registry:
    """Call every registration hook plugin by plugin, so each spec is attributed to its plugin."""
    registry = Registry()
    registry.plugins = dict(infos)
    for kind, hook_name in HOOKS.items():
        caller = getattr(pm.hook, hook_name)
        # get_hookimpls() lists plugins in registration (discovery) order, so specs are attributed
        # and listed in the order plugins were found (tryfirst/trylast, which would reorder them, and
        # wrappers, which this direct call would not honour, are refused in _register_module).
        for impl in caller.get_hookimpls():
            info = infos.get(impl.plugin_name) or PluginInfo(name=impl.plugin_name, source="unknown")

            def register(spec: Any, _kind: str = kind, _info: PluginInfo = info) -> None:
                registry.add(_kind, spec, _info)

            try:
                returned = impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"Plugin {info.label} failed in {hook_name}: {describe_exception(exc)}"
                                  f"{_raised_at(exc)}. Fix the error, or {without(info)}", plugin=info.label) from exc
            if returned is not None:
                raise PluginError(f"Plugin {info.label}: {hook_name} returned {short(returned)}; registration hooks "
                                  "return nothing: call register(spec) for each spec instead "
                                  f"(def {hook_name}(register): register(...))", plugin=info.label)
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
            f"(documented in {HOOKS_MANUAL})")


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
                          f"{_unknown_hook_hint(pm, exc.plugin)}", plugin=label) from exc
    registry = collect(pm, infos)
    return Host(pm=pm, registry=registry, plugins_dir=str(plugins_dir) if plugins_dir else None)
