"""Parameter schemas: is each ``Param`` sound, what values to run with, are bad values refused?

Runs in the checker's worker; pure Python (no heavy imports).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.plugin.params import Param, ParamError, validate

TYPES = (int, float, str, bool, list)


class NeedsExample(Exception):
    """A required parameter has no default and no value the check can guess."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def guess(p: Param) -> Any:
    """A value inside ``p``'s declared range or choices; raise :class:`NeedsExample` when there is none."""
    if p.choices:
        return p.choices[0]
    if p.type is bool:
        return True
    if p.type in (int, float):
        lo, hi = p.min, p.upper()
        if lo is not None and hi is not None:
            value = (lo + hi) / 2
        elif lo is not None:
            value = lo + 1
        elif hi is not None:
            value = hi - 1
        else:
            value = 1
        return int(math.floor(value)) if p.type is int else float(value)
    raise NeedsExample(p.name)


def example_values(params: Sequence[Param], given: Mapping[str, Any]) -> dict:
    """Values to run a thing with: ``given`` first, then defaults, then guesses for required ones."""
    values = dict(given)
    for p in params:
        if p.name not in values and p.required:
            values[p.name] = guess(p)
    return validate(params, values)


def _bad_values(p: Param) -> list[Any]:
    """Values ``p`` must refuse: the wrong type, out of range, not a choice."""
    bad: list[Any] = ["not-a-number"] if p.type in (int, float) else [12345]
    if p.type is bool:
        bad = ["yes"]
    if p.type is list:
        bad = ["not-a-list"]
    if p.choices:
        wrong = f"{p.choices[0]}-not-a-choice" if isinstance(p.choices[0], str) else "not-a-choice"
        bad.append([wrong] if p.type is list else wrong)  # a list's choices are its items'
    if p.type in (int, float) and not p.choices:
        if p.min is not None:
            bad.append(p.min if p.min_exclusive else p.min - 1)
        top = p.upper()
        if top is not None:
            bad.append(top if p.max_exclusive else top + 1)
    return bad


def soundness(params: Sequence[Param]) -> list[str]:
    """Problems with the declarations themselves (each says what to change)."""
    problems = []
    for p in params:
        where = f"parameter {p.name!r}"
        if p.type not in TYPES:
            problems.append(f"{where}: type {p.type!r} is not one of int, float, str, bool, list")
            continue
        if p.min is not None and p.upper() is not None and p.min > p.upper():
            problems.append(f"{where}: min {p.min!r} is above max {p.upper()!r}")
        if p.type is list and p.item_type is not None and p.item_type not in TYPES:
            problems.append(f"{where}: item_type {p.item_type!r} is not one of int, float, str, bool")
        for c in p.choices or ():
            try:
                p.check([c] if p.type is list else c, p.name)
            except ParamError as exc:
                problems.append(f"{where}: choice {c!r} does not fit its own declaration ({exc.reason})")
        if not p.required:
            try:
                p.check(p.default, p.name)
            except ParamError as exc:
                problems.append(f"{where}: default {p.default!r} does not fit its own declaration "
                                f"({exc.reason}); change the default or the bounds")
    return problems


def check_schema(params: Sequence[Param], given: Mapping[str, Any]) -> tuple[list[str], dict | None, str]:
    """Check a schema; return (problems, the example values or ``None``, a line on what was checked).

    The example is ``None`` when a required parameter needs a value that cannot be guessed.
    """
    problems = soundness(params)
    if problems:
        return problems, None, ""
    try:
        example = example_values(params, given)
    except NeedsExample as exc:
        return [], None, f"required parameter {exc.key!r} has no default and no value to guess"
    except ParamError as exc:
        return [f"example values do not validate: {exc}"], None, ""
    refused: list[str] = []
    for p in params:
        for bad in _bad_values(p):
            try:
                validate(params, {**example, p.name: bad})
            except ParamError as exc:
                if p.name not in str(exc):
                    problems.append(f"the error for {p.name}={bad!r} does not name the parameter: {exc}")
                elif len(refused) < 2:
                    refused.append(str(exc))
            else:
                problems.append(f"parameter {p.name!r} accepts the bad value {bad!r}; declare its type, "
                                "min/max or choices")
    try:
        validate(params, {**example, "no_such_parameter": 1})
        problems.append("an unknown parameter is accepted")
    except ParamError:
        pass
    shown = ", ".join(f"{k}={v!r}" for k, v in example.items()) or "none"
    no_help = [p.name for p in params if not p.help]
    line = f"{len(params)} parameter(s); runs with {shown}"
    if refused:
        line += "; refuses bad values (" + "; ".join(refused) + ")"
    if no_help:
        line += f"; note: no help text on {', '.join(no_help)}"
    return problems, example, line
