"""A suite's measurements made safe to send and to store, in the worker, before they leave it.

A suite is a plugin: what it returns may be anything. Whatever it is, it either becomes
measurements the driver can record and SQLite's JSON functions can read, or the cell fails here,
with a reason naming the suite and the problem. The driver never meets a value it cannot write
(a crash there would cost the run).

- ``metric`` and ``unit`` must be non-empty strings, ``flag`` ``None`` or a non-empty string.
- ``value`` must be a number (or ``None``); a NaN or infinite value is stored as ``NULL`` and
  the measurement flagged (``non-finite value: nan``), so it is shown but never ranked.
- ``params``, ``stats`` and ``info`` become plain JSON (dicts with string keys, lists, strings,
  finite numbers, booleans, ``None``): anything else is written as its ``str()`` (or a note when
  that fails), non-finite numbers as ``null``; nesting deeper than :data:`MAX_DEPTH` is cut.
- ``samples`` must be numbers; non-finite ones are dropped, and counted in ``info``.
"""

from __future__ import annotations

import math
from typing import Any

from harness.core.errors import exception_type
from harness.plugin.specs import Measurement

#: How deep ``params``, ``stats`` and ``info`` may nest (a self-referencing dict would recurse forever).
MAX_DEPTH = 32
#: The longest string kept in ``params``, ``stats`` or ``info``.
MAX_TEXT = 100_000


def _text(obj: Any) -> str:
    if isinstance(obj, str):
        return obj[:MAX_TEXT]
    try:
        return str(obj)[:MAX_TEXT]
    except BaseException as exc:  # noqa: BLE001 - a plugin's object whose __str__ raises
        return f"<{exception_type(obj) if isinstance(obj, BaseException) else type(obj).__name__} object: " \
               f"str() raised {exception_type(exc)}>"


def plain(obj: Any, depth: int = 0) -> Any:
    """``obj`` as plain, finite JSON data (see the module docstring)."""
    if obj is None or isinstance(obj, (bool, str)):
        return _text(obj) if isinstance(obj, str) else obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(obj, dict):
        return {_text(k): plain(v, depth + 1) for k, v in list(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [plain(v, depth + 1) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy and torch scalars
        try:
            return plain(obj.item(), depth + 1)
        except Exception:  # noqa: BLE001 - not a scalar after all
            pass
    return _text(obj)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    try:
        return float(value)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{what} must be a number: float() raised {type(exc).__name__}") from None


def checked(suite_name: str, plugin_label: str, measurements: Any) -> list[Measurement]:
    """The suite's measurements, checked and made plain; raise ``TypeError`` naming the suite otherwise."""
    where = f"suite {suite_name} of plugin {plugin_label}"
    if not isinstance(measurements, list):
        raise TypeError(f"{where}: run(ctx) returned {type(measurements).__name__}; return a list of "
                        "harness.api.Measurement")
    out = []
    for m in measurements:
        if not isinstance(m, Measurement):
            raise TypeError(f"{where} returned {_text(m)[:200]!r} in its list; return "
                            "harness.api.Measurement(metric, value, unit, ...) objects")
        for field in ("metric", "unit"):
            if not isinstance(getattr(m, field), str) or not getattr(m, field).strip():
                raise TypeError(f"{where}: the {field} of a measurement must be a non-empty string, got "
                                f"{_text(getattr(m, field))[:200]!r}")
        if m.flag is not None and (not isinstance(m.flag, str) or not m.flag.strip()):
            raise TypeError(f"{where}: flag of {m.metric} must be a non-empty reason string, got "
                            f"{_text(m.flag)[:200]!r}")
        flag, info = m.flag, plain(m.info if isinstance(m.info, dict) else {"info": m.info})
        value = None if m.value is None else _number(m.value, f"{where}: the value of {m.metric}")
        if value is not None and not math.isfinite(value):
            flag = flag or f"non-finite value: {value}"
            value = None
        samples = None
        if m.samples is not None:
            if not isinstance(m.samples, (list, tuple)):
                raise TypeError(f"{where}: samples of {m.metric} must be a list of numbers")
            raw = [_number(v, f"{where}: a sample of {m.metric}") for v in m.samples]
            samples = [v for v in raw if math.isfinite(v)]
            if len(samples) < len(raw):
                info["non_finite_samples_dropped"] = len(raw) - len(samples)
        out.append(Measurement(m.metric, value, m.unit, params=plain(m.params or {}), stats=plain(m.stats or {}),
                               samples=samples, info=info, flag=flag))
    return out
