"""Pareto frontiers over leaderboard columns: the entries no other entry beats on every objective.

Objectives are leaderboard columns (or metrics, resolved to their single-stream column as
``--sort`` does), each maximised or minimised. Frontiers are computed per group (per backend by
default, and always per machine, so latency of different machines never competes). Flagged rows
and rows missing an objective are left out, and counted by reason (the kind of flag, the missing
objective): one line however many rows are left out; the leaderboard's ``flags`` column has each row's.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.query.columns import Catalogue, exclusion, resolve_column
from harness.query.refs import QueryError


@dataclass(frozen=True)
class Objective:
    """One objective: a leaderboard column and whether bigger is better."""

    column: str
    maximize: bool

    def __str__(self) -> str:
        return f"{self.column}:{'max' if self.maximize else 'min'}"


@dataclass
class Frontier:
    """The non-dominated rows, and what was left out of the comparison and why."""

    rows: Any
    objectives: list[Objective]
    groups: list[str]
    considered: int
    left_out: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """One line for people: how many entries are on the frontier and what was left out."""
        per = f" per {', '.join(self.groups)}" if self.groups else ""
        line = (f"Pareto frontier of {', '.join(map(str, self.objectives))}{per}: {len(self.rows)} of "
                f"{self.considered} entries")
        if self.left_out:
            reasons = "; ".join(f"{n} {why}" for why, n in sorted(self.left_out.items(), key=lambda kv: -kv[1]))
            line += f"; left out: {reasons}"
        return line


def flag_kinds(text: str) -> str:
    """The kinds of the flags in ``text`` (``"quality gate: top1 retained 0.7 < 0.99; soundness: ..."`` ->
    ``"quality gate, soundness"``): what a frontier counts its flagged rows by, not each row's figures."""
    kinds = sorted({part.split(":", 1)[0].strip() for part in str(text).split("; ") if part.strip()})
    return ", ".join(kinds) or "flagged"


def parse_objectives(text: str, columns: list[str], directions: dict[str, bool | None]) -> list[Objective]:
    """``"top1:max,p50_ms:min"`` -> objectives. A missing ``:max``/``:min`` takes the metric catalogue's
    direction. Two or three objectives; raises :class:`QueryError` naming the bad part."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not 2 <= len(parts) <= 3:
        raise QueryError(f"--pareto {text!r}: give two or three objectives, e.g. top1:max,p50_ms:min")
    objectives = []
    for part in parts:
        name, _, sense = part.partition(":")
        try:
            column = resolve_column(name.strip(), columns)
        except QueryError as exc:
            raise QueryError(f"--pareto: {exc}", key="--pareto") from None
        if sense:
            if sense not in ("max", "min"):
                raise QueryError(f"--pareto: {part!r}: the direction must be 'max' or 'min', not {sense!r}")
            maximize = sense == "max"
        else:
            known = directions.get(column.split("@", 1)[0])
            if known is None:
                raise QueryError(f"--pareto: {part!r}: metric {column!r} has no direction in the metric catalogue; "
                                 f"write {name}:max or {name}:min")
            maximize = known
        objectives.append(Objective(column, maximize))
    if len({o.column for o in objectives}) != len(objectives):
        raise QueryError(f"--pareto {text!r}: an objective is named twice")
    return objectives


def non_dominated(values: Any) -> Any:
    """Boolean mask (a numpy array) of the rows of ``values`` (n x k, every objective to be *minimised*) that no
    other row dominates (no worse everywhere, better somewhere). Equal rows are all kept; see :func:`pareto_mask`."""
    import numpy as np

    return np.array(pareto_mask(np.asarray(values, dtype=float).tolist()), dtype=bool)


def pareto_mask(values: list[list[float]]) -> list[bool]:
    """:func:`non_dominated` on plain lists (no numpy: the command line's frontier starts faster without it).

    Lexicographic order (NaN last): a row can only be dominated by rows before it, and a dominated row is
    dominated by a frontier row too, so each row is checked against the frontier found so far. A NaN
    compares false both ways, so a row with one is never dominated and dominates nothing on that objective.
    """
    keep = [False] * len(values)
    order = sorted(range(len(values)), key=lambda i: [math.inf if v != v else v for v in values[i]])
    front: list[list[float]] = []
    for i in order:
        v = values[i]
        if any(all(f <= x for f, x in zip(p, v)) and any(f < x for f, x in zip(p, v)) for p in front):
            continue
        keep[i] = True
        front.append(v)
    return keep


def frontier(frame: Any, objectives: list[Objective], groups: list[str] | None = None, *,
             catalogue: Catalogue) -> Frontier:
    """The Pareto frontier of a leaderboard (a :class:`harness.query.board.Board` or a DataFrame; the
    frontier's rows are of the same kind), per ``groups`` (e.g. ``["backend"]``) and per machine.

    Flagged rows (see :func:`harness.query.columns.exclusion`, which reads ``catalogue``) are never on
    a frontier; rows without a value for every objective cannot be placed.
    Both are counted in :attr:`Frontier.left_out` by reason. Rows come out best first on the first
    objective within each group.
    """
    from harness.query.board import Board, as_board, to_frame

    board = as_board(frame)
    groups = [g for g in (groups or []) if g != "machine"]
    for g in groups:
        if g not in board.columns:
            raise QueryError(f"--pareto-by: no column {g!r} to group by (use one of: backend, model, dataset, "
                             f"method, or 'none')")
    keys = ["machine", *groups] if "machine" in board.columns else groups
    cols = [o.column for o in objectives]
    out_of = exclusion(cols, catalogue) if "flags" in board.columns else (lambda _text: False)
    left_out: Counter = Counter()
    parts: dict[tuple, list[dict]] = {}
    for row in board.rows:
        if out_of(row.get("flags")):
            left_out[f"flagged ({flag_kinds(row['flags'])})"] += 1
            continue
        absent = [c for c in cols if row.get(c) is None]
        if absent:
            left_out[f"without {' and '.join(absent)}"] += 1
            continue
        parts.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    signs = [-1.0 if o.maximize else 1.0 for o in objectives]
    first = objectives[0]
    rows: list[dict] = []
    for key in sorted(parts, key=lambda k: tuple((v is None, v if v is not None else "") for v in k)):
        group = parts[key]
        mask = pareto_mask([[float(r[c]) * s for c, s in zip(cols, signs)] for r in group])
        kept = [r for r, k in zip(group, mask) if k]
        rows += sorted(kept, key=lambda r: -r[first.column] if first.maximize else r[first.column])
    front = Board(list(board.columns), rows)
    return Frontier(rows=front if isinstance(frame, Board) else to_frame(front), objectives=objectives,
                    groups=groups, considered=len(board), left_out=left_out)
