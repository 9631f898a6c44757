"""The registry: every spec the loaded plugins registered, by kind and name, with the plugin that
registered it, handed out typed (``registry.suite("latency") -> SuiteSpec``).

:meth:`Registry.add` is the ``register`` callable's body: it validates each spec the moment it is
registered and names the plugin in every error, so a plugin that registers something wrong fails at
load time, never half-way through a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from harness.core.errors import UnknownName, UsageError
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

DISABLE_ENV = "HARNESS_DISABLE_PLUGINS"

#: hook name of each kind's registration hook
HOOKS = {kind: f"harness_register_{kind}s" for kind in KINDS}

#: A spec class: what one ``Registered`` holds.
S = TypeVar("S")


class PluginError(UsageError):
    """A plugin failed to load or to register; the message names it, its distribution and what to change."""


def without(info: PluginInfo) -> str:
    """How to run without a plugin, for the end of error messages."""
    hint = f"run without it with {DISABLE_ENV}={info.name}"
    if info.source == "entry point" and info.distribution:
        hint += f" (or pip uninstall {info.distribution})"
    return hint


def short(obj: Any, limit: int = 120) -> str:
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
class Registered(Generic[S]):
    """One registered spec with the plugin that registered it."""

    spec: S
    plugin: PluginInfo


class Registry:
    """Everything the loaded plugins registered, by kind and name.

    Look things up with the typed methods (:meth:`suite`, :meth:`method`, ...), :meth:`has`,
    :meth:`names`, :meth:`specs` and :meth:`registered`; a name nobody registered raises
    :class:`~harness.core.errors.UnknownName` (a usage error listing the known names). Only
    :meth:`add` writes.
    """

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Registered[Any]]] = {kind: {} for kind in KINDS}
        self.plugins: dict[str, PluginInfo] = {}

    def add(self, kind: str, spec: Any, plugin: PluginInfo) -> None:
        """Validate and add one spec; a duplicate name is an error naming both plugins."""
        expected = KINDS[kind]
        if not isinstance(spec, expected):
            raise PluginError(f"Plugin {plugin.label} registered {short(spec)} through "
                              f"{HOOKS[kind]}, expected a harness.api.{expected.__name__}: {_spec_hint(kind, spec)}",
                              plugin=plugin.label)
        try:
            spec.check()
        except SpecError as exc:
            raise PluginError(f"Plugin {plugin.label} registered an invalid {kind}: {exc}",
                              plugin=plugin.label) from exc
        existing = self._items[kind].get(spec.name)
        if existing is not None:
            raise PluginError(f"{kind} {spec.name!r} is registered twice: by plugin "
                              f"{existing.plugin.label} and by plugin {plugin.label}. Names are unique per "
                              f"kind: rename one (the name= of its {expected.__name__}, e.g. "
                              f"{suggest_name(plugin.name + '-' + spec.name)!r}), or {without(plugin)}",
                              plugin=plugin.label)
        self._items[kind][spec.name] = Registered(spec, plugin)
        plugin.registered.setdefault(kind, []).append(spec.name)


    def get(self, kind: str, name: str) -> Registered[Any]:
        """The registered spec with its plugin; :class:`~harness.core.errors.UnknownName` lists the known names."""
        try:
            return self._items[kind][name]
        except KeyError:
            raise UnknownName(kind, name, sorted(self._items[kind])) from None

    def has(self, kind: str, name: str) -> bool:
        """Whether a ``kind`` named ``name`` is registered."""
        return name in self._items[kind]

    def names(self, kind: str) -> list[str]:
        """Sorted names of one kind."""
        return sorted(self._items[kind])


    def registered(self, kind: str) -> list[Registered[Any]]:
        """Every spec of one kind with its plugin, in registration (discovery) order."""
        return list(self._items[kind].values())


    def specs(self, kind: str) -> list[Any]:
        """Every registered spec of one kind, by name."""
        return [self._items[kind][n].spec for n in sorted(self._items[kind])]

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

    def spec(self, kind: str, name: str) -> Any:
        """The spec of ``kind`` ``name``, for code whose kind is a variable (else use the typed lookups)."""
        return self.get(kind, name).spec

    def plugin_of(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered ``kind`` ``name``."""
        return self.get(kind, name).plugin
