"""Scoring verdicts as VNN-COMP 2026 does, against what a benchmark knows about each instance.

- ``violated`` with a valid witness (replayed in onnxruntime, within 1e-4 of the box): correct, +10.
- ``violated`` without a valid witness: incorrect, -150.
- ``holds`` on a ``planted`` instance (a counterexample is known): incorrect, -150, and *unsound*.
- ``holds`` on any other instance: correct, +10 (no counterexample is known; VNN-COMP counts a
  proof correct unless some tool found one).
- ``unknown`` and ``timeout``: 0.

VNN-COMP's time bonuses are not awarded: a verdict's time is recorded, not scored.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.verify.benchmarks import PLANTED
from harness.verify.verdicts import HOLDS, TIMEOUT, UNKNOWN, VIOLATED

CORRECT, INCORRECT = 10, -150


@dataclass(frozen=True)
class Outcome:
    """How one verdict scored: ``verified``, ``falsified``, ``unknown``, ``timeout``, ``unsound``
    (``holds`` on a planted instance) or ``invalid_witness``; and its points."""

    outcome: str
    points: int
    reason: str


def score(kind: str, result: str, witness_valid: bool | None, witness_reason: str = "") -> Outcome:
    """Score one verdict ``result`` on an instance of ``kind``."""
    if result == VIOLATED:
        if witness_valid:
            return Outcome("falsified", CORRECT, "violated with a valid witness")
        return Outcome("invalid_witness", INCORRECT, f"violated without a valid witness: {witness_reason or 'none'}")
    if result == HOLDS:
        if kind == PLANTED:
            return Outcome("unsound", INCORRECT, "holds, but a planted counterexample violates the property")
        return Outcome("verified", CORRECT, "holds (no counterexample known)")
    if result in (UNKNOWN, TIMEOUT):
        return Outcome(result, 0, result)
    raise ValueError(f"unknown verdict {result!r}")
