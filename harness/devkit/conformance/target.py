"""What ``harness check-plugin TARGET`` means: a distribution, a plugin, a module or a file."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.core.errors import UsageError
from harness.devkit import toy
from harness.plugin.manager import FILE_MODULE_PREFIX, Host, PluginInfo, load_host


class TargetError(UsageError, LookupError):
    """Nothing installed or on disk answers to the target's name."""


@dataclass
class Target:
    """The plugins to check and how to load them.

    :param label: what the user named.
    :param plugins: plugin names in the loaded host.
    :param extra: ``(plugin name, ref)`` pairs loaded beside the installed plugins, where ``ref``
        is ``module:NAME`` or ``file:PATH`` (plugins that are not installed).
    :param plugins_dir: the ``--plugins-dir`` in force.
    """

    label: str
    plugins: list[str]
    extra: list[tuple[str, str]] = field(default_factory=list)
    plugins_dir: str | None = None


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def import_ref(ref: str) -> Any:
    """The plugin object of a ``module:NAME`` or ``file:PATH`` reference."""
    how, _, value = ref.partition(":")
    if how == "module":
        return importlib.import_module(value)
    from harness.plugin.manager import _load_file

    path = Path(value)
    return _load_file(path, PluginInfo(name=path.stem, source="file", location=str(path)))


def host_for(target: Target) -> Host:
    """The host the checks run in: every installed plugin, the target, and the toy model and dataset."""
    mine = [(name, import_ref(ref)) for name, ref in target.extra]
    # Checking harness.devkit.toy itself: it is the target, not a second copy beside it.
    extra = ([] if any(obj is toy for _, obj in mine) else [(toy.PLUGIN_NAME, toy)]) + mine
    return load_host(target.plugins_dir, extra=extra)


def _module_spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def resolve(what: str | ModuleType, plugins_dir: str | os.PathLike | None = None) -> Target:
    """Find the plugins ``what`` names; raise :class:`TargetError` when nothing answers.

    Tried in order: a distribution name (every plugin it provides), a plugin name, the
    module or file a loaded plugin came from, an importable module, a ``.py`` file. A module
    object resolves to the plugin loaded from it, else to itself.
    """
    pdir = str(plugins_dir) if plugins_dir else None
    infos = load_host(pdir).registry.plugins
    if isinstance(what, ModuleType):
        name = what.__name__
        path = getattr(what, "__file__", None)
        hits = [p.name for p in infos.values() if p.location in (name, path)]
        if hits:
            return Target(label=name, plugins=hits, plugins_dir=pdir)
        if name.startswith(FILE_MODULE_PREFIX) and path:
            return Target(label=path, plugins=[Path(path).stem], extra=[(Path(path).stem, f"file:{path}")],
                          plugins_dir=pdir)
        return Target(label=name, plugins=[name], extra=[(name, f"module:{name}")], plugins_dir=pdir)

    dists = [p.name for p in infos.values() if p.distribution and canonical(p.distribution) == canonical(what)]
    if dists:
        return Target(label=what, plugins=dists, plugins_dir=pdir)
    if what in infos:
        return Target(label=what, plugins=[what], plugins_dir=pdir)
    as_path = str(Path(what).resolve()) if what.endswith(".py") else None
    hits = [p.name for p in infos.values()
            if p.location == what or (as_path and p.location and str(Path(p.location).resolve()) == as_path)]
    if hits:
        return Target(label=what, plugins=hits, plugins_dir=pdir)
    if as_path and Path(as_path).is_file():
        stem = Path(as_path).stem
        return Target(label=what, plugins=[stem], extra=[(stem, f"file:{as_path}")], plugins_dir=pdir)
    if not what.endswith(".py") and _module_spec(what) is not None:
        return Target(label=what, plugins=[what], extra=[(what, f"module:{what}")], plugins_dir=pdir)
    known = sorted({p.distribution for p in infos.values() if p.distribution and p.source == "entry point"})
    raise TargetError(f"no installed distribution, plugin, importable module or .py file is named {what!r} "
                      f"(plugin distributions installed: {', '.join(known) or 'none'}; plugins: "
                      f"{', '.join(infos)})")


def code_dirs(host: Host, plugins: list[str]) -> list[str]:
    """The folders holding the plugins' code (to point an error at the plugin's own line)."""
    dirs = []
    for name in plugins:
        loc = host.registry.plugins[name].location or ""
        if loc.endswith(".py"):
            dirs.append(str(Path(loc).resolve().parent))
            continue
        spec = _module_spec(loc.split(".", 1)[0]) if loc else None
        if spec is not None and spec.submodule_search_locations:
            dirs += [str(Path(p).resolve()) for p in spec.submodule_search_locations]
        elif spec is not None and spec.origin:
            dirs.append(str(Path(spec.origin).resolve()))
    return dirs
