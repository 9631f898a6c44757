"""Adjudication across verifiers, as VNN-COMP judges a benchmark once every tool has answered.

Input: the stored verdict records of every verifier cell of one benchmark (the same network and
properties: benchmark, method and seed). Each instance is judged from all of them:

1. **Known violated**: the instance is planted (a counterexample replays), or peers agree it is
   violated (``peer_violated``), or **any** verifier of the benchmark gave a witness that replayed
   in onnxruntime. A ``holds`` on it is *unsound*: -150, and the verifier is flagged.
2. A ``violated`` whose witness does not replay is *invalid_witness*: -150, flagged (VNN-COMP 2026).
   A ``violated`` whose witness replays is correct (+10), even against peers who said ``holds``:
   a replaying witness is a proof (the record notes the contradiction).
3. **Disputed**: a ``holds`` on an instance where another verifier answered ``violated`` without a
   witness that replays, and nothing in 1 is known. The ``violated`` side is already scored by 2; the
   ``holds`` is scored by the conflict rule (:data:`DEFAULT_CONFLICTS`, VNN-COMP 2021's
   ``odd_one_out``): it earns +10 when the rule sides with it and 0 otherwise, never a penalty, since
   no counterexample is known. Under ``odd_one_out`` a lone dissenter is outvoted, and with two or more
   answers on each side nobody is credited; ``voting``: the majority is credited, a tie is not;
   ``ignore``: a disputed ``holds`` scores 0.
4. Any other ``holds`` is correct (+10), ``unknown`` and ``timeout`` 0.

Beside that score (``score``, VNN-COMP 2026's points) each cell gets ``score_2021``: the same
answers scored by VNN-COMP 2021's rule (:mod:`harness.verify.vnncomp2021`: votes across the
benchmark's verifiers, +10 / -100, time bonus, the cell's smallest decided time as its overhead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.verify.benchmarks import PEER_HOLDS, PEER_VIOLATED, PLANTED
from harness.verify.points import CORRECT, INCORRECT
from harness.verify.verdicts import HOLDS, TIMEOUT, UNKNOWN, VIOLATED
from harness.verify.vnncomp2021 import CONFLICT_RULES, DEFAULT_CONFLICTS, MIN_TIME_S, score_instance

COUNTS = ("verified", "falsified", "unknown", "timeout", "unsound", "invalid_witness", "disputed")


@dataclass
class Judged:
    """One verifier cell's answers judged against its whole benchmark."""

    score: int = 0
    score_2021: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    flags: list[str] = field(default_factory=list)
    instances: list[dict] = field(default_factory=list)  # per instance: outcome, points, why


def instance_key(record: Mapping) -> tuple:
    """Which instance a stored record answers: its index and property file (the same in every cell of a benchmark)."""
    return record.get("instance"), record.get("vnnlib")


def _evidence(key: tuple, answers: Mapping[str, Mapping], labels: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """Why the instance is known violated (``None``: it is not), and the verifiers whose claim of violated
    did not replay."""
    any_record = next(iter(answers.values()))
    kind, truth = any_record.get("kind"), any_record.get("truth") or {}
    replayed = [labels[c] for c, r in answers.items() if r.get("result") == VIOLATED and r.get("witness_valid")]
    unproven = [labels[c] for c, r in answers.items() if r.get("result") == VIOLATED and not r.get("witness_valid")]
    if replayed:
        return f"a witness of {', '.join(sorted(replayed))} replays in onnxruntime", unproven
    if kind == PLANTED:
        return "a planted counterexample replays", unproven
    if kind == PEER_VIOLATED:
        return f"peers agree it is violated ({', '.join(truth.get('agree', []))})", unproven
    return None, unproven


def _disputed_credit(n_holds: int, n_against: int, conflicts: str) -> bool:
    if conflicts == "ignore":
        return False
    if conflicts == "odd_one_out" and n_holds > 1 and n_against > 1:
        return False
    return n_holds > n_against


def adjudicate(cells: Mapping[str, list[Mapping]], labels: Mapping[str, str] | None = None,
               conflicts: str = DEFAULT_CONFLICTS) -> dict[str, Judged]:
    """Judge every cell of one benchmark: ``cells`` maps a cell id to its stored instance records,
    ``labels`` a cell id to the verifier's name for the record (default: the id)."""
    if conflicts not in CONFLICT_RULES:
        raise ValueError(f"unknown conflict rule {conflicts!r} (known: {', '.join(CONFLICT_RULES)})")
    labels = {c: (labels or {}).get(c, c) for c in cells}
    by_instance: dict[tuple, dict[str, Mapping]] = {}
    for cell, records in cells.items():
        for r in records:
            by_instance.setdefault(instance_key(r), {})[cell] = r
    judged = {c: Judged() for c in cells}
    overhead = {c: min((r.get("time_s") or 0.0 for r in rs if r.get("result") in (HOLDS, VIOLATED)), default=0.0)
                for c, rs in cells.items()}
    unsound_why: dict[str, list[str]] = {c: [] for c in cells}
    for key, answers in by_instance.items():
        known, unproven = _evidence(key, answers, labels)
        n_holds = sum(r.get("result") == HOLDS for r in answers.values())
        for cell, r in answers.items():
            result, j = r.get("result"), judged[cell]
            if result == HOLDS and known:
                outcome, points, why = "unsound", INCORRECT, f"holds, but {known}"
                unsound_why[cell].append(known)
            elif result == HOLDS and unproven:
                credit = _disputed_credit(n_holds, len(unproven), conflicts)
                outcome, points = "disputed", CORRECT if credit else 0
                why = (f"holds, disputed by {', '.join(sorted(unproven))} (violated, no witness replays); "
                       f"{conflicts}: {'credited' if credit else 'not credited'}")
            elif result == HOLDS:
                outcome, points, why = "verified", CORRECT, "holds (no counterexample known)"
            elif result == VIOLATED and r.get("witness_valid"):
                outcome, points, why = "falsified", CORRECT, "violated with a witness that replays"
                if r.get("kind") == PEER_HOLDS:
                    why += f"; contradicts the peers' holds ({', '.join((r.get('truth') or {}).get('agree', []))})"
            elif result == VIOLATED:
                outcome, points = "invalid_witness", INCORRECT
                why = f"violated without a witness that replays: {r.get('witness_reason') or 'none'}"
            else:
                outcome, points, why = (result if result in (UNKNOWN, TIMEOUT) else UNKNOWN), 0, str(result)
            j.counts[outcome] += 1
            j.score += points
            j.instances.append({"instance": key[0], "onnx": r.get("onnx"), "vnnlib": key[1], "result": result,
                                "outcome": outcome, "points": points, "why": why})
        answers_2021 = {c: (r.get("result"), max(MIN_TIME_S, (r.get("time_s") or 0.0) - overhead[c]))
                        for c, r in answers.items()}
        for cell, (points, _) in score_instance(answers_2021, conflicts, random_falsifier=None).items():
            judged[cell].score_2021 += points
    for cell, j in judged.items():
        n = j.counts["unsound"]
        if n:
            witnessed = sum("replays in onnxruntime" in w for w in unsound_why[cell])
            j.flags.append(f"unsound: holds on {n} instance{'s' if n > 1 else ''} known to be violated"
                           + (f" ({witnessed} by another verifier's replaying witness)" if witnessed else ""))
        n = j.counts["invalid_witness"]
        if n:
            j.flags.append(f"invalid witness: violated without a valid witness on {n} instance{'s' if n > 1 else ''}")
    return judged
