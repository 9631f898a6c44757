"""What every spec shares: names, the common fields and their checks, formats, and :class:`Skip`.

Every spec has these fields, documented here once:

:param name: its name in suite files: lower-case letters, digits, ``-``, ``_`` or ``.``, starting
    with a letter (:data:`NAME_RE`); unique among the things of its kind.
:param params: its typed parameters (:class:`~harness.plugin.params.Param`); a suite file is
    validated against them (a suite's are called ``settings``).
:param description: one line for listings.
:param example: ``example(workdir) -> dict``: parameter values ``harness check-plugin`` runs the
    contract with; it may write files under ``workdir`` (an image folder, a weights file). Needed
    only when a required parameter has no default the check can guess (a path, a free string).
"""

from __future__ import annotations

import re
from typing import Any

from harness.core.errors import UsageError
from harness.plugin.params import Param

#: Names of plugins' things: lower-case words joined by ``-``, ``_`` or digits.
NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")

#: Artifact formats the host knows how to store.
FORMATS = ("torch", "onnx")


class SpecError(UsageError, ValueError):
    """A spec is malformed (raised at registration, with the plugin's name)."""


class Skip(Exception):
    """Raise from a suite (or a method) to record the cell as ``skipped`` with this reason."""


def suggest_name(name: Any) -> str:
    """A valid name close to ``name`` (``"Bad Name"`` -> ``"bad-name"``), for error messages."""
    text = re.sub(r"[^a-z0-9_.-]+", "-", str(name).strip().lower()).strip("-")
    text = re.sub(r"^[^a-z]+", "", text)
    return text or "my-thing"


def must_be_callable(spec: Any, attr: str, signature: str) -> None:
    """Raise :class:`SpecError` unless ``spec.<attr>`` is callable, saying how to pass it."""
    value = getattr(spec, attr)
    if not callable(value):
        raise SpecError(f"{spec.name}: {attr} must be callable, got {value!r}: pass the function object, not "
                        f"its name or its result; the host calls it as {signature}")


def check_formats(spec: Any, attr: str, hint: str = "", *, one: bool = False) -> None:
    """Raise :class:`SpecError` unless ``spec.<attr>`` is a non-empty tuple of :data:`FORMATS`
    (exactly one of them with ``one``); ``hint`` ends the message with what to write instead."""
    value = getattr(spec, attr)
    # A bare string would iterate as letters: "onnx" is not ("onnx",).
    bad = isinstance(value, str) or any(f not in FORMATS for f in value)
    if bad or not value or (one and len(value) != 1):
        what = "one format" if one else "formats"
        raise SpecError(f"{spec.name}: {attr} must name {what} among {FORMATS}, got {value!r}{hint}")


def check_common(spec: Any) -> None:
    """Raise :class:`SpecError` when a field every spec has (above) is malformed."""
    if not isinstance(spec.name, str) or not NAME_RE.match(spec.name):
        raise SpecError(f"name {spec.name!r} must match {NAME_RE.pattern}: lower-case letters, digits, '-', '_' "
                        f"or '.', starting with a letter (e.g. {suggest_name(spec.name)!r})")
    for p in spec.params:
        if not isinstance(p, Param):
            raise SpecError(f"{spec.name}: params must be harness.api.Param objects, got {p!r}: declare each "
                            "parameter as Param('name', float, default=..., min=..., max=..., help='...')")
    names = [p.name for p in spec.params]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SpecError(f"{spec.name}: duplicate parameter names {names}: declare {', '.join(dup)} once")
    example = getattr(spec, "example", None)
    if example is not None and not callable(example):
        raise SpecError(f"{spec.name}: example must be a function example(workdir) -> dict, got {example!r}")
