"""Leaderboard columns: how stored identities and metrics become column names and labels, the metric
catalogue, and which flagged rows a ranking or frontier leaves out.

The leaderboard, the Pareto frontier, comparisons and history all read these; this module imports
nothing of theirs, so the query layer's imports run one way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.query.refs import QueryError

IDENTITY = ["model", "dataset", "method", "method_params", "seed", "backend", "backend_params", "machine"]
#: Columns of a leaderboard frame that are neither identity nor a metric: a reader must see them.
MARKS = ("rank", "checks", "flags")
#: The checks a built-in suite's figures need before they are ranked (the writers always run them:
#: :mod:`harness.measure.honesty`): a ``check_*`` metric of the same row, passed. ``check_test01`` is
#: per batch size: a latency figure at ``@b32`` needs ``check_test01@b32``. A figure whose check has no
#: result is flagged ``unchecked: ...`` (:func:`harness.query.board.add_unchecked`) and never ranked.
CHECKS_NEEDED = {"accuracy": ("check_claims", "check_agreement"), "latency": ("check_claims", "check_test01"),
                 "size": ("check_claims",)}
PER_BATCH_CHECKS = ("check_test01",)
#: A flag ``"SUITE only: why"`` (the latency suite's ``latency only: `` under emulation) keeps its row out
#: of the rankings and frontiers over SUITE's metrics only; every other flag keeps it out of all of them.
SCOPED = " only: "
#: Between the flags of a row's ``flags`` text. A measurement's own flag may hold several flags joined by
#: it (``unsound: ...; invalid witness: ...``); a piece that starts no flag of its own (``and 1 more``,
#: written inside one flag by older versions) stays with the flag before it (:func:`split_flag`).
FLAG_SEP = "; "
_FLAG_START = re.compile(r"[A-Za-z][\w -]{0,40}: ")


def split_flag(text: Any) -> list[str]:
    """The flags in one flag text, each whole: ``"soundness: claim x; and 1 more"`` is one flag
    (``"soundness: claim x, and 1 more"``), ``"unsound: ...; invalid witness: ..."`` two."""
    if not isinstance(text, str) or not text:
        return []
    out: list[str] = []
    for piece in text.split(FLAG_SEP):
        if out and not _FLAG_START.match(piece):
            out[-1] += ", " + piece
        elif piece:
            out.append(piece)
    return out


def flag_rank(flag: str) -> tuple:
    """The order flags are shown in: those that keep a row out of every ranking (a failed check, a quality
    gate, unsoundness) first, then ``unchecked: ...``, then those scoped to one suite (``latency only: ...``);
    alphabetical within each."""
    scoped = SCOPED in flag.split(": ", 1)[0] + ": "
    return (2 if scoped else 1 if flag.startswith("unchecked: ") else 0, flag)


def join_flags(texts: Any) -> str | None:
    """The distinct flags of ``texts`` (flag texts, ``None`` skipped) as one ``flags`` text in
    :func:`flag_rank` order, or ``None`` when there are none."""
    flags = {f for t in texts for f in split_flag(t)}
    return FLAG_SEP.join(sorted(flags, key=flag_rank)) or None


#: Metrics the query layer computes from stored ones (``harness.query.density``): ``{name: (from, higher)}``.
DERIVED = {"effective_params": ("density", True), "capacity_density": ("density", True),
           "capacity_density_lo": ("density", True), "capacity_density_hi": ("density", True)}


def params_text(d: dict) -> str:
    """``{"sparsity": 0.5}`` -> ``sparsity=0.5``: parameters as the leaderboard shows them."""
    if set(d) == {"steps"} and isinstance(d["steps"], list):  # a pipeline: each step's parameters, in order
        return " + ".join(f"{s['name']}({params_text(s['params'])})" for s in d["steps"])
    return ",".join(f"{k}={v}" for k, v in sorted(d.items())) if d else ""


def label(name: str, params: str) -> str:
    """``mlp(hidden=64)``: a model or dataset name with its (JSON) parameters."""
    text = params_text(json.loads(params))
    return f"{name}({text})" if text else name


def column_name(metric: str, mparams: str) -> str:
    """The leaderboard column of a metric measured with (JSON) parameters: ``p50_ms@b32``."""
    extra = json.loads(mparams)
    bs = extra.pop("batch_size", None)
    suffix = f"@b{bs}" if bs is not None else ""
    return metric + suffix + "".join(f"@{k}={v}" for k, v in sorted(extra.items()))


def metric_of(column: str) -> str:
    """The metric a leaderboard column shows: ``p50_ms@b32`` -> ``p50_ms``."""
    return column.split("@", 1)[0]


def batch_of(column: str) -> int:
    """The batch size in a column's name (``p50_ms@b32`` -> 32), 0 when it names none."""
    for part in column.split("@")[1:]:
        if part.startswith("b") and part[1:].isdigit():
            return int(part[1:])
    return 0


def metric_columns(frame: Any) -> list[str]:
    """The metric columns of a leaderboard frame (neither identity nor ``rank``/``flags``)."""
    return [c for c in frame.columns if c not in IDENTITY and c not in MARKS]


def resolve_column(name: str, columns: list[str]) -> str:
    """A column named exactly ``name``, or the smallest-batch column of metric ``name``."""
    if name in columns:
        return name
    variants = [c for c in columns if metric_of(c) == name]
    if not variants:
        raise QueryError(f"no column {name!r} in the leaderboard (columns: {', '.join(columns) or 'none'})",
                         key=name)

    return min(variants, key=batch_of)


def convert_distinct(frame: Any, columns: list[str], fn) -> Any:
    """``fn(*row[columns])`` for every row, called once per distinct combination (few repeat over many rows)."""
    import pandas as pd

    uniques = frame[columns].drop_duplicates()
    converted = uniques.assign(_out=[fn(*values) for values in uniques.itertuples(index=False)])
    merged = frame[columns].merge(converted, on=columns, how="left")
    return pd.Series(merged["_out"].to_numpy(), index=frame.index)


@dataclass(frozen=True)
class Catalogue:
    """The metric catalogue (the store's ``metrics`` table, which the driver fills from every registered
    suite): the suite each metric belongs to and whether higher is better."""

    suites: dict[str, str]
    higher: dict[str, bool | None]

    @classmethod
    def read(cls, conn: Any) -> Catalogue:
        """The catalogue of an open leaderboard connection, with the metrics the query layer derives
        (:data:`DERIVED`)."""
        rows = conn.execute("SELECT name, suite, higher_is_better FROM metrics").fetchall()
        suites = {name: suite for name, (suite, _) in DERIVED.items()}
        higher = {name: up for name, (_, up) in DERIVED.items()}
        suites.update({r[0]: r[1] for r in rows})
        higher.update({r[0]: None if r[2] is None else bool(r[2]) for r in rows})
        return cls(suites=suites, higher=higher)

    def direction(self, column: str) -> bool | None:
        """Whether higher is better for the metric of ``column`` (``None``: the catalogue does not say)."""
        return self.higher.get(metric_of(column))


def exclusion(columns: list[str], catalogue: Catalogue) -> Callable[[Any], bool]:
    """Whether a ranking or frontier over ``columns`` must leave out a row, given its ``flags`` text.

    Every flag (a quality gate, a soundness check) excludes its row, except a flag ``"SUITE only: ..."``
    naming a suite of the catalogue, which excludes it only when one of ``columns`` is a metric of that
    suite (latency timed under emulation is no hardware figure, but the row's accuracy and size are real).
    """
    suites = set(catalogue.suites.values())
    involved = {catalogue.suites.get(metric_of(c)) for c in columns}

    def leaves_out(part: str) -> bool:
        scope, sep, _ = part.partition(SCOPED)
        return not (sep and scope in suites) or scope in involved

    def out(text: Any) -> bool:
        if not isinstance(text, str) or not text:
            return False
        return any(leaves_out(part) for part in split_flag(text))

    return out


def needed_checks(column: str, catalogue: Catalogue) -> list[str]:
    """The check columns a figure in ``column`` needs (:data:`CHECKS_NEEDED`): ``p90_ms@b32`` ->
    ``["check_claims", "check_test01@b32"]``; ``[]`` for metrics of other suites."""
    out = []
    for check in CHECKS_NEEDED.get(catalogue.suites.get(metric_of(column), ""), ()):
        bs = batch_of(column)
        out.append(f"{check}@b{bs}" if check in PER_BATCH_CHECKS and bs else check)
    return out


def checks_behind(column: str, catalogue: Catalogue) -> str:
    """The checks standing behind a ranked figure of ``column``, as the ``checks`` column shows them:
    ``claims, test01@b1``."""
    return ", ".join(c.removeprefix("check_") for c in needed_checks(column, catalogue))
