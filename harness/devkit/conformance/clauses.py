"""The machinery every contract uses: clauses that pass, fail or skip, and where an error came from."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import describe_exception
from harness.devkit.conformance.report import FAIL, PASS, SKIP, CheckResult

_HOST_DIR = str(Path(__file__).resolve().parents[1])


class _Outcome(Exception):
    """Raised inside a clause to end it with a status."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def fail(reason: str) -> None:
    """End the current clause as failed; ``reason`` says what is wrong and what to change."""
    raise _Outcome(FAIL, reason)


def skip(reason: str) -> None:
    """End the current clause as skipped (it could not run here, which is not the plugin's fault)."""
    raise _Outcome(SKIP, reason)


def where(exc: BaseException, plugin_dirs: Sequence[str]) -> str:
    """``file:line in function`` of the frame that raised: the deepest one in the plugin's own code
    when there is one, else the deepest outside the host."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if any(f.filename.startswith(d) for d in plugin_dirs)]
    outside = [f for f in frames if not f.filename.startswith(_HOST_DIR)]
    pick = (mine or outside or frames or [None])[-1]
    return "" if pick is None else f"{pick.filename}:{pick.lineno} in {pick.name}"


def describe(exc: BaseException, plugin_dirs: Sequence[str]) -> str:
    """``Type: message (at file:line in function)``."""
    at = where(exc, plugin_dirs)
    return describe_exception(exc) + (f" (at {at})" if at else "")


def jsonable(obj: Any) -> bool:
    """Whether ``obj`` survives ``json.dumps`` (what the store does with info, params and stats)."""
    try:
        json.dumps(obj)
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class Clauses:
    """Runs the clauses of one subject's contract and reports each as it ends.

    :param subject: ``"method global-magnitude"``.
    :param emit: receives each :class:`CheckResult`.
    :param stage: told the name of each clause as it starts (so a crash can be pinned on it).
    :param plugin_dirs: folders of the plugin's code, to point errors at its lines.
    """

    subject: str
    emit: Callable[[CheckResult], None]
    stage: Callable[[str], None] = lambda name: None
    plugin_dirs: Sequence[str] = ()
    not_passed: set[str] = field(default_factory=set)

    def run(self, check: str, fn: Callable[[], str | None], *, needs: Sequence[str] = ()) -> bool:
        """Run the clause ``fn`` (it returns a line on what it measured); return whether it passed.

        The clause fails on any exception (reported with its type, message and the plugin's
        line) or on :func:`fail`, and skips on :func:`skip`; it is skipped without running when
        a clause it ``needs`` did not pass.
        """
        self.stage(check)
        missing = [n for n in needs if n in self.not_passed]
        status, reason = PASS, ""
        try:
            if missing:
                skip(f"needs {', '.join(missing)}, which did not pass")
            reason = fn() or ""
        except _Outcome as out:
            status, reason = out.status, out.reason
        except Exception as exc:  # noqa: BLE001 - a plugin's error is a finding, not a crash
            status, reason = FAIL, describe(exc, self.plugin_dirs)
        self.record(check, status, reason)
        return status == PASS

    def record(self, check: str, status: str, reason: str) -> None:
        """Report a clause decided elsewhere."""
        if status != PASS:
            self.not_passed.add(check)
        self.emit(CheckResult(self.subject, check, status, reason))
