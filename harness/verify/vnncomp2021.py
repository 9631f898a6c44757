"""VNN-COMP 2021's scoring rule, and its results files (``results_csv/<tool>.csv``).

Written from the rules of the competition's ``process_results.py`` (github:stanleybak/vnncomp2021_results),
not copied from it. Per benchmark (category) and tool:

- **Verdicts** are read from a row's result column, lower-cased: ``unsat`` is ``holds``, ``sat``
  ``violated``; ``run_instance_timeout`` is ``timeout``; ``error_exit_code_*`` is ``error``; an empty
  result, ``no_result_in_file`` and ``prepare_instance_error_*`` are ``unknown``.
- **Overhead**: each tool's smallest run time over all its ``holds``/``violated`` rows (every
  benchmark, the ``test`` rows included) is subtracted from its run times; a tool may have a second
  overhead for the benchmarks it ran on the CPU (ERAN on ``acasxu`` and ``eran``). A time below
  1 s after the subtraction counts as 1 s.
- **Conflicts** (some tools answer ``holds``, others ``violated``) are resolved by the ``conflicts``
  rule: ``voting`` (the majority is right; a tie scores 0), ``odd_one_out`` (the competition's
  choice: as voting, but when at least two tools stand on each side everyone scores 0) or
  ``ignore`` (every answer to a conflicted instance scores 0). Without a conflict, the answer given
  is correct.
- **Points**: a correct answer +10, an incorrect one -100, ``unknown``/``timeout``/``error`` 0. A
  ``violated`` on an instance where the random falsifier (``randgen``) also found a
  counterexample scores +1 instead.
- **Time bonus** on a correct answer (not the +1 kind): +2 for the fastest among the tools that gave
  the same answer, else +1 for the second fastest; times within 0.2 s of one count as equal.
- Rows whose network is ``test_nano`` or ``test_tiny`` are not scored, nor is the ``test`` benchmark,
  nor a benchmark in which a tool never answered ``holds`` or ``violated`` (the tool did not take part).
- **Percent** per benchmark: 100 * score / the best tool's score, at least 0.

Instances are matched across tools by their network and property file names; the competition matched
rows by position, which is the same for its files, where every tool lists the instances in one order.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

HOLDS, VIOLATED, UNKNOWN, TIMEOUT, ERROR = "holds", "violated", "unknown", "timeout", "error"
DECIDED = (HOLDS, VIOLATED)
CONFLICT_RULES = ("voting", "odd_one_out", "ignore")
#: The competition's choice of conflict rule (``main()`` of ``process_results.py``).
DEFAULT_CONFLICTS = "odd_one_out"
CORRECT, INCORRECT, RANDOM_FALSIFIED = 10, -100, 1
FASTEST, SECOND, SAME_TIME_S, MIN_TIME_S = 2, 1, 0.2, 1.0
#: The tool whose counterexamples are by random sampling (a ``violated`` it also found scores +1).
RANDOM_FALSIFIER = "randgen"
#: Tools and the benchmarks each ran on the CPU, with an overhead of their own (as 2021 scored them).
CPU_BENCHMARKS_2021 = {"ERAN": ("acasxu", "eran")}
#: Tools and benchmarks whose results were not counted in 2021.
SKIPPED_2021 = {"RPM": ("mnistfc",)}
_NOT_SCORED = ("test_nano", "test_tiny")


@dataclass(frozen=True)
class Row:
    """One row of a ``results_csv/<tool>.csv`` file, its verdict normalized."""

    benchmark: str
    onnx: str
    vnnlib: str
    prepare_s: float
    result: str
    run_s: float

    @property
    def scored(self) -> bool:
        """Whether 2021 scored the row (not the ``test`` benchmark, nor a ``test_nano``/``test_tiny`` network)."""
        return self.benchmark != "test" and not any(t in self.onnx for t in _NOT_SCORED)

    @property
    def instance(self) -> str:
        """The instance's name as the competition printed it: ``<network stem>-<property stem>``."""
        return instance_name(self.onnx, self.vnnlib)


def _stem(path: str) -> str:
    name = Path(path.strip()).name
    for ext in (".gz", ".onnx", ".vnnlib"):
        name = name[: -len(ext)] if name.endswith(ext) else name
    return name


def instance_name(onnx: str, vnnlib: str) -> str:
    """``<network stem>-<property stem>`` (``.onnx``, ``.vnnlib`` and ``.gz`` removed)."""
    return f"{_stem(onnx)}-{_stem(vnnlib)}"


def normalize_result(text: str) -> str:
    """A results file's verdict as 2021 read it (see the module docstring)."""
    word = text.strip().lower()
    if not word:
        return UNKNOWN
    for prefix, verdict in (("unsat", HOLDS), ("sat", VIOLATED), ("no_result_in_file", UNKNOWN),
                            ("prepare_instance_error_", UNKNOWN), ("run_instance_timeout", TIMEOUT),
                            ("error_exit_code_", ERROR)):
        if word.startswith(prefix):
            return verdict
    if word in (HOLDS, VIOLATED, UNKNOWN, TIMEOUT, ERROR):
        return word
    raise ValueError(f"unexpected result {text.strip()!r}")


def read_results_csv(path: str | Path) -> list[Row]:
    """The rows of one tool's results file (``benchmark,onnx,vnnlib,prepare_s,result,run_s``, no header).

    A malformed row raises :class:`ValueError` naming the file and line.
    """
    path = Path(path)
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        try:
            table = list(csv.reader(f))
        except csv.Error as exc:  # NUL bytes, a field past csv's size limit: not a results file
            raise ValueError(f"{path}: not a results file: {exc}") from None
        for line, cols in enumerate(table, start=1):
            if not cols or not "".join(cols).strip():
                continue
            if len(cols) < 6:
                raise ValueError(f"{path}:{line}: expected 6 columns (benchmark, onnx, vnnlib, prepare time, "
                                 f"result, run time), got {len(cols)}")
            try:
                rows.append(Row(cols[0].strip(), cols[1].strip(), cols[2].strip(), float(cols[3]),
                                normalize_result(cols[4]), float(cols[5])))
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: {exc}") from None
    return rows


def read_results_folder(folder: str | Path) -> dict[str, list[Row]]:
    """``{tool: rows}`` of every ``<tool>.csv`` in ``folder`` (or in its ``results_csv/``)."""
    folder = Path(folder)
    if (folder / "results_csv").is_dir():
        folder = folder / "results_csv"
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise ValueError(f"no <tool>.csv results files in {folder}")
    return {f.stem: read_results_csv(f) for f in files}


@dataclass
class ToolScore:
    """One tool's totals on one benchmark."""

    score: int = 0
    verified: int = 0  # correct holds
    falsified: int = 0  # correct violated
    fastest: int = 0
    incorrect: int = 0
    percent: float = 0.0
    points: dict[str, int] = field(default_factory=dict)  # per instance


def overheads(rows: Iterable[Row], cpu_benchmarks: Iterable[str] = (), skipped: Iterable[str] = ()) -> tuple[float,
                                                                                                              float]:
    """``(overhead, cpu_overhead)``: the smallest run time of a decided row, outside and inside ``cpu_benchmarks``
    (``inf`` when none). Rows of ``skipped`` benchmarks do not count."""
    cpu, skipped = set(cpu_benchmarks), set(skipped)
    gpu_min = cpu_min = math.inf
    for r in rows:
        if r.benchmark in skipped or r.result not in DECIDED:
            continue
        if r.benchmark in cpu:
            cpu_min = min(cpu_min, r.run_s)
        else:
            gpu_min = min(gpu_min, r.run_s)
    return gpu_min, cpu_min


def score_instance(answers: Mapping[str, tuple[str, float]], conflicts: str = DEFAULT_CONFLICTS,
                   random_falsifier: str | None = RANDOM_FALSIFIER) -> dict[str, tuple[int, bool]]:
    """``{tool: (points, fastest)}`` for one instance from ``{tool: (verdict, seconds)}``, by the 2021 rule."""
    if conflicts not in CONFLICT_RULES:
        raise ValueError(f"unknown conflict rule {conflicts!r} (known: {', '.join(CONFLICT_RULES)})")
    times = {v: [s for r, s in answers.values() if r == v] for v in DECIDED}
    n_holds, n_violated = len(times[HOLDS]), len(times[VIOLATED])
    random_found = random_falsifier is not None and answers.get(random_falsifier, ("",))[0] == VIOLATED
    out = {}
    for tool, (res, secs) in answers.items():
        out[tool] = (0, False)
        if res not in DECIDED or n_holds == n_violated:
            continue
        if n_holds and n_violated and (conflicts == "ignore" or (conflicts == "odd_one_out" and n_holds > 1
                                                                 and n_violated > 1)):
            continue
        majority = HOLDS if n_holds > n_violated else VIOLATED
        if random_found:
            # A random sample found a counterexample: violated is certain (2021 never saw a holds here).
            out[tool] = (RANDOM_FALSIFIED, False) if res == VIOLATED else (INCORRECT, False)
            continue
        if res != majority:
            out[tool] = (INCORRECT, False)
            continue
        same = sorted(times[res])
        if secs < same[0] + SAME_TIME_S:
            out[tool] = (CORRECT + FASTEST, True)
        elif len(same) > 1 and secs < same[1] + SAME_TIME_S:
            out[tool] = (CORRECT + SECOND, False)
        else:
            out[tool] = (CORRECT, False)
    return out


def score_2021(tables: Mapping[str, list[Row]], conflicts: str = DEFAULT_CONFLICTS,
               cpu_benchmarks: Mapping[str, Iterable[str]] = CPU_BENCHMARKS_2021,
               skipped: Mapping[str, Iterable[str]] = SKIPPED_2021,
               random_falsifier: str | None = RANDOM_FALSIFIER) -> dict[str, dict[str, ToolScore]]:
    """``{benchmark: {tool: ToolScore}}`` for every tool's rows, scored as VNN-COMP 2021 scored them."""
    answers: dict[str, dict[str, dict[str, tuple[str, float]]]] = defaultdict(lambda: defaultdict(dict))
    for tool, rows in tables.items():
        cpu = set(cpu_benchmarks.get(tool, ()))
        skip = set(skipped.get(tool, ()))
        gpu_over, cpu_over = overheads(rows, cpu, skip)
        scored = [r for r in rows if r.scored]
        taking_part = {r.benchmark for r in scored if r.result in DECIDED and r.benchmark not in skip}
        for r in scored:
            if r.benchmark not in taking_part:
                continue
            secs = max(MIN_TIME_S, r.run_s - (cpu_over if r.benchmark in cpu else gpu_over))
            answers[r.benchmark][r.instance][tool] = (r.result, secs)
    out: dict[str, dict[str, ToolScore]] = {}
    for bench, instances in answers.items():
        totals: dict[str, ToolScore] = {}
        for inst, given in instances.items():
            for tool, (points, fastest) in score_instance(given, conflicts, random_falsifier).items():
                t = totals.setdefault(tool, ToolScore())
                t.score += points
                t.points[inst] = points
                t.fastest += fastest
                t.incorrect += points == INCORRECT
                if points > 0:
                    t.verified += given[tool][0] == HOLDS
                    t.falsified += given[tool][0] == VIOLATED
        best = max(t.score for t in totals.values())
        for t in totals.values():
            t.percent = max(0.0, 100.0 * t.score / best) if best > 0 else 0.0
        out[bench] = totals
    return out
