"""Typed parameters for models, datasets, methods, backends and suite settings.

A :class:`Param` declares one parameter; :func:`validate` checks a mapping of
values against a tuple of them and :func:`expand_grid` turns list values into a
grid of concrete parameter sets, as a suite file's ``sparsity = [0.5, 0.9]``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.errors import UsageError, unknown_name

_REQUIRED = object()

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean", list: "a list"}


class ParamError(UsageError, ValueError):
    """A value does not fit its declared parameter. ``key`` names the parameter."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}", key=key)
        self.reason = reason


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class MachineLimit:
    """A bound that depends on the machine a suite file is validated on: ``Param(max=CPU_CORES)``.

    :param what: what the bound is, for the message (``the CPU cores this process may use``).
    :param value: ``value() -> number``, read at validation.
    """

    what: str
    value: Callable[[], float]

    def __call__(self) -> float:
        """The bound on this machine."""
        return self.value()


#: The upper bound of a thread count: more threads than cores only contend (and 100,000 threads hang the
#: runtime that starts them), so a backend's ``threads`` parameter declares ``max=CPU_CORES``.
CPU_CORES = MachineLimit("the CPU cores this process may use", cpu_cores)


@dataclass(frozen=True)
class Param:
    """One typed parameter.

    :param name: the key in a suite file.
    :param type: ``int``, ``float``, ``str``, ``bool`` or ``list``.
    :param default: the value when the key is absent; leave it out to make the parameter required.
    :param min: inclusive lower bound for numbers (``min_exclusive`` makes it exclusive).
    :param max: inclusive upper bound for numbers (``max_exclusive`` makes it exclusive); a
        :class:`MachineLimit` (``CPU_CORES``) is read on the machine that validates the value.
    :param choices: the allowed values, when they are a closed set.
    :param item_type: the type of each item when ``type`` is ``list``.
    :param grid: whether a list given for a scalar parameter expands into a grid (default yes).
    :param help: one line for ``harness plugins`` and the docs.
    :param path: ``"file"``, ``"folder"`` or ``"any"`` (either) when the value names one on disk, ``"new"``
        for a file the plugin may create (its folder must exist; a ``str`` parameter):
        a value written in a suite file is resolved against the suite file's folder and checked to
        exist, be of that kind and be readable when the file is validated; the plugin receives the
        absolute path. A value with a scheme prefix (``package:NAME/sub``) is passed as it is.
    """

    name: str
    type: type
    default: Any = _REQUIRED
    min: float | None = None
    max: float | MachineLimit | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple | None = None
    item_type: type | None = None
    grid: bool = True
    help: str = ""
    path: str = ""

    def __post_init__(self) -> None:
        if self.path not in ("", "file", "folder", "any", "new"):
            raise ValueError(f"Param {self.name!r}: path={self.path!r}: use 'file', 'folder', 'any', 'new' "
                             "or leave it out")

    @property
    def required(self) -> bool:
        """Whether the parameter has no default."""
        return self.default is _REQUIRED

    def check(self, value: Any, key: str) -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`ParamError`."""
        value = _coerce(value, self.type, key)
        if self.type is list:
            if self.item_type is not None:
                value = [self._check_scalar(_coerce(v, self.item_type, f"{key}[{i}]"), f"{key}[{i}]")
                         for i, v in enumerate(value)]
            return value
        return self._check_scalar(value, key)

    def _check_scalar(self, value: Any, key: str) -> Any:
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise ParamError(key, f"{value!r} is not one of {allowed}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value and (self.min is not None or self.max is not None):  # NaN fits no range
                raise ParamError(key, f"{value!r} is out of range: {self._range()}")
            if self.min is not None and (value < self.min or (self.min_exclusive and value == self.min)):
                raise ParamError(key, f"{value!r} is out of range: {self._range()}")
            top = self.upper()
            if top is not None and (value > top or (self.max_exclusive and value == top)):
                raise ParamError(key, f"{value!r} is out of range: {self._range()}")
        return value

    def upper(self) -> float | None:
        """The upper bound on this machine (a :class:`MachineLimit` read now), or ``None``."""
        return self.max() if isinstance(self.max, MachineLimit) else self.max

    def _range(self) -> str:
        lo = "(" if self.min_exclusive else "["
        hi = ")" if self.max_exclusive else "]"
        a = "-inf" if self.min is None else repr(self.min)
        top = self.upper()
        b = "inf" if top is None else repr(top)
        why = f" ({top!r}: {self.max.what})" if isinstance(self.max, MachineLimit) else ""
        return f"must be in {lo}{a}, {b}{hi}{why}"

    def describe(self) -> dict:
        """A JSON-able description for listings."""
        d = {"name": self.name, "type": self.type.__name__, "help": self.help}
        if not self.required:
            d["default"] = self.default
        for attr in ("min", "max", "choices", "path"):
            if getattr(self, attr) not in (None, ""):
                d[attr] = getattr(self, attr)
        if isinstance(self.max, MachineLimit):
            d["max"], d["max_is"] = self.upper(), self.max.what
        return d


def _coerce(value: Any, typ: type, key: str) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is bool and isinstance(value, bool):
        return value
    if typ is not bool and isinstance(value, bool):
        raise ParamError(key, f"expected {_TYPE_NAMES.get(typ, typ.__name__)}, got a boolean ({value!r})")
    if not isinstance(value, typ):
        got = type(value).__name__
        raise ParamError(key, f"expected {_TYPE_NAMES.get(typ, typ.__name__)}, got {got} {value!r}")
    return value


def validate(params: Iterable[Param], values: Mapping[str, Any], where: str = "") -> dict:
    """Check ``values`` against ``params``; return a complete dict with defaults filled in.

    List values of scalar parameters are kept as lists (each item checked): call
    :func:`expand_grid` to expand them. Unknown keys and missing required keys are
    errors. ``where`` prefixes the key in error messages (``matrix[0].methods[1]``).
    Raises the first :class:`ParamError`; :func:`check_values` returns all of them.
    """
    out, errors = check_values(params, values, where)
    if errors:
        raise errors[0]
    return out


def check_values(params: Iterable[Param], values: Mapping[str, Any], where: str = "") -> tuple[dict, list[ParamError]]:
    """:func:`validate` that goes on past a bad value: ``(checked, errors)``, where ``checked`` holds every
    value that passed and the defaults of those not given, and ``errors`` one :class:`ParamError` per bad
    key, in the order of ``values`` (a suite file reports all of them together)."""
    params = tuple(params)
    by_name = {p.name: p for p in params}
    prefix = f"{where}." if where else ""
    out: dict[str, Any] = {}
    errors: list[ParamError] = []
    for key, value in values.items():
        p = by_name.get(key)
        try:
            if p is None:
                raise ParamError(prefix + key, unknown_name("parameter", key, sorted(by_name)))
            if isinstance(value, list) and p.type is not list:
                if not p.grid:
                    raise ParamError(prefix + key, "does not take a list of values")
                if not value:
                    raise ParamError(prefix + key, "an empty list expands to no runs")
                out[key] = [p.check(v, f"{prefix}{key}[{i}]") for i, v in enumerate(value)]
            else:
                out[key] = p.check(value, prefix + key)
        except ParamError as exc:
            errors.append(exc)
    for p in params:
        if p.name not in out and p.name not in values:
            if p.required:
                errors.append(ParamError(prefix + p.name, "is required"))
            else:
                out[p.name] = p.default
    return out, errors


def expand_grid(params: Iterable[Param], values: Mapping[str, Any]) -> list[dict]:
    """Expand list values of scalar parameters into the cartesian grid, in key order."""
    kinds = {p.name: p for p in params}
    keys = list(values)
    axes = []
    for k in keys:
        v = values[k]
        p = kinds.get(k)
        if isinstance(v, list) and p is not None and p.type is not list:
            axes.append(v)
        else:
            axes.append([v])
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


__all__ = ["CPU_CORES", "MachineLimit", "Param", "ParamError", "check_values", "cpu_cores", "validate", "expand_grid"]

