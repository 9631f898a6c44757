"""Scoring verdicts as VNN-COMP 2026 does, against what a benchmark knows about each instance.

- ``violated`` with a valid witness (replayed in onnxruntime, within 1e-4 of the box): correct, +10.
- ``violated`` without a valid witness: incorrect, -150.
- ``holds`` on a ``planted`` instance (a counterexample is known) or a ``peer_violated`` one (peers
  agree it is violated): incorrect, -150, and *unsound*.
- ``holds`` on any other instance: correct, +10, *as far as this cell knows*. VNN-COMP counts a proof
  correct unless some tool found a counterexample: that is decided once every verifier of the benchmark
  has answered, at query time (:mod:`harness.verify.adjudication`), which also scores VNN-COMP 2021's
  rule (:mod:`harness.verify.vnncomp2021`, with its time bonus).
- ``unknown`` and ``timeout``: 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.verify.benchmarks import VIOLATED_KINDS
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
        if kind in VIOLATED_KINDS:
            known = "a planted counterexample violates" if kind == "planted" else "peers agree it violates"
            return Outcome("unsound", INCORRECT, f"holds, but {known} the property")
        return Outcome("verified", CORRECT, "holds (no counterexample known)")
    if result in (UNKNOWN, TIMEOUT):
        return Outcome(result, 0, result)
    raise ValueError(f"unknown verdict {result!r}")
