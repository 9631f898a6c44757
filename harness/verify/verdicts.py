"""Verdicts and the VNN-COMP result file.

A tool writes its answer to a result file: the first line is the verdict, and after ``sat`` the
counterexample as ``((X_0 v) (X_1 v) ... (Y_0 v) ...)``. The harness's own verifiers write the
same file, so one parser reads every verifier.

Verdict words are matched exactly, whole and lower-cased: ``"sat" in "unsat"`` is true in Python,
and a parser that tested substrings would turn every proof into a counterexample.

``unknown`` means only that the tool ran and could not decide. A tool that did not run to an answer
(it failed to start, its host or plugins failed to load, it crashed, it wrote no result file or one
that cannot be parsed) gives ``error``, with the reason: the cell that asked fails, as any failed cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.verify.vnnlib import VERDICTS

#: The verdicts a verifier can give (:data:`harness.verify.vnnlib.VERDICTS`).
HOLDS, VIOLATED, UNKNOWN, TIMEOUT = VERDICTS
#: The verifier did not run to an answer (start, import, crash, unreadable result): never a score.
ERROR = "error"
#: Every result a verifier's run can end in: the four verdicts and ``error``.
RESULTS = (*VERDICTS, ERROR)

#: Result-file words (VNN-COMP 2022 on, and the 2021 words) and the verdict each means.
WORDS = {
    "unsat": HOLDS, "holds": HOLDS,
    "sat": VIOLATED, "violated": VIOLATED,
    "unknown": UNKNOWN, "error": ERROR,
    "timeout": TIMEOUT,
}



class VerifierFailed(HarnessError):
    """A verifier gave ``error`` (no answer): the cell that asked fails, with the verifier's reason."""


_PAIR = re.compile(r"\(\s*([XY])_(\d+)\s+([^\s()]+)\s*\)")


@dataclass
class Verdict:
    """What a verifier answered on one instance.

    :param result: ``holds``, ``violated``, ``unknown``, ``timeout`` or ``error`` (no answer: see the module).
    :param witness: for ``violated``: the counterexample's inputs (flat, VNN-LIB order), or ``None``.
    :param outputs: the outputs the verifier reported for the witness (``None`` when it gave none).
    :param time_s: wall time of the verifier's process.
    :param raw: the verdict word as written (``unsat``, ``sat``, ...), for the record.
    :param error: the reason of an ``error`` (a crash, a host that failed to load, an unreadable result
        file), or why a tool that ran said ``unknown``.
    :param info: anything else the verifier reported (bounds, nodes, solver status).
    """

    result: str
    witness: Any = None
    outputs: Any = None
    time_s: float = 0.0
    raw: str = ""
    error: str | None = None
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-able form (witness as a list)."""
        return {"result": self.result, "raw": self.raw, "time_s": round(self.time_s, 4), "error": self.error,
                "witness": None if self.witness is None else [float(v) for v in self.witness],
                "info": self.info}


def parse_verdict(word: str) -> tuple[str, str | None]:
    """The verdict of a result-file word, exactly: ``(verdict, error)``.

    Unrecognised text is ``error``, saying what was found.
    """
    token = word.strip().lower()
    if token in WORDS:
        return WORDS[token], ("the tool reported an error" if token == "error" else None)
    shown = word.strip()[:60] or "(empty)"
    return ERROR, f"unrecognised verdict {shown!r} (expected sat, unsat, unknown, timeout or error)"


def parse_witness(text: str) -> tuple[Any, Any]:
    """``(x, y)`` from ``(X_i v)`` / ``(Y_j v)`` pairs; either is ``None`` when absent or gappy."""
    import numpy as np

    found: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for kind, index, value in _PAIR.findall(text):
        try:
            found[kind][int(index)] = float(value)
        except ValueError:
            continue

    def vector(d: dict[int, float]) -> Any:
        if not d or sorted(d) != list(range(len(d))):
            return None
        return np.array([d[i] for i in range(len(d))], dtype=np.float64)

    return vector(found["X"]), vector(found["Y"])


def read_result_file(path: str | Path) -> Verdict:
    """Read a VNN-COMP result file (missing, empty or unparsable: ``error`` with the reason)."""
    p = Path(path)
    if not p.is_file():
        return Verdict(ERROR, error="the tool wrote no result file")
    text = p.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return Verdict(ERROR, error="the result file is empty")
    result, error = parse_verdict(lines[0])
    verdict = Verdict(result, raw=lines[0].strip(), error=error)
    if result == VIOLATED:
        verdict.witness, verdict.outputs = parse_witness("\n".join(lines[1:]))
    return verdict


def format_result(result: str, witness: Any = None, outputs: Any = None) -> str:
    """The result file's text for a verdict (VNN-COMP words: ``unsat``, ``sat``, ``unknown``, ``timeout``,
    ``error``)."""
    word = {HOLDS: "unsat", VIOLATED: "sat", UNKNOWN: "unknown", TIMEOUT: "timeout", ERROR: "error"}[result]
    if result != VIOLATED or witness is None:
        return word + "\n"
    pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(witness)]
    if outputs is not None:
        pairs += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(outputs)]
    return word + "\n(" + "\n ".join(pairs) + ")\n"


def write_result_file(path: str | Path, result: str, witness: Any = None, outputs: Any = None) -> None:
    """Write a verdict as a VNN-COMP result file."""
    if result not in RESULTS:
        raise ValueError(f"unknown verdict {result!r} (expected one of {', '.join(RESULTS)})")
    Path(path).write_text(format_result(result, witness, outputs))
