"""Verification cells judged across verifiers at query time, from everything the store holds.

A verification cell scores its own answers as it runs, knowing only its benchmark's labels. Whether
a ``holds`` is right also depends on the other verifiers of the same benchmark (one of them may have
a witness that replays), and they may have run later, on other machines, under Ray, or in a store
merged in since. So the leaderboard judges again, here: every latest ``ok`` verification cell of the
store, grouped by benchmark (benchmark, method and its parameters, seed), through
:func:`harness.verify.adjudication.adjudicate`. Read-only, like every query.
"""

from __future__ import annotations

import json
from typing import Any

from harness.core.identity import canonical
from harness.query.columns import params_text
from harness.verify.adjudication import Judged, adjudicate
from harness.verify.vnncomp2021 import DEFAULT_CONFLICTS

SUITE = "verification"
#: Measurements of a verification cell that adjudication replaces (and the ones it adds).
JUDGED_METRICS = ("score", "score_2021", "unsound", "invalid_witness", "disputed")
_GROUP = ("model", "model_params", "dataset", "dataset_params", "method", "method_params", "seed")


def judged_cells(conn: Any, conflicts: str = DEFAULT_CONFLICTS) -> dict[int, Judged]:
    """``{cell id: Judged}`` for every latest ``ok`` verification cell whose verdicts were stored."""
    rows = conn.execute(
        f"SELECT l.id, {', '.join('l.' + c for c in _GROUP)}, l.backend, l.backend_params, m.info "
        "FROM latest_cells l JOIN measurements m ON m.cell_id = l.id "
        "WHERE l.suite = ? AND m.metric = 'unsound'", [SUITE]).fetchall()
    groups: dict[tuple, dict[str, list]] = {}
    labels: dict[str, str] = {}
    for row in rows:
        try:
            records = json.loads(row["info"] or "{}").get("instances")
        except (ValueError, AttributeError):
            records = None
        if not isinstance(records, list):
            continue  # a cell without its verdicts (an older or foreign writer) keeps its own figures
        cell = str(row["id"])
        groups.setdefault(_benchmark_of(row), {})[cell] = records
        params = params_text(json.loads(row["backend_params"] or "{}"))
        labels[cell] = row["backend"] + (f"({params})" if params else "")
    out: dict[int, Judged] = {}
    for cells in groups.values():
        for cell, judged in adjudicate(cells, labels, conflicts).items():
            out[int(cell)] = judged
    return out


def _benchmark_of(row: Any) -> tuple:
    """The group of a cell: its network and properties. A benchmark's ``truth`` labels its instances but
    does not change them, so cells with and without it are judged together."""
    params = json.loads(row["model_params"] or "{}")
    params.pop("truth", None)
    return tuple(canonical(params) if c == "model_params" else row[c] for c in _GROUP)


def apply(conn: Any, measurements: list[tuple]) -> list[tuple]:
    """``measurements`` (``(cell_id, metric, value, params, flag)`` tuples) with every verification cell's
    judged metrics replaced by the verdict across its benchmark's verifiers."""
    # Only the verification suite records ``unsound``: without it in view there is nothing to judge, and the
    # store is not read again (the leaderboard's speed on large stores without verification stays as it was).
    if not any(m[1] == "unsound" for m in measurements):
        return measurements
    judged = judged_cells(conn)
    present = list(dict.fromkeys(m[0] for m in measurements if int(m[0]) in judged))
    if not present:
        return measurements
    chosen = set(present)
    kept = [m for m in measurements if not (m[0] in chosen and m[1] in JUDGED_METRICS)]
    for cell in present:
        j = judged[int(cell)]
        flag = "; ".join(j.flags) or None
        values = {"score": j.score, "score_2021": j.score_2021, "unsound": j.counts["unsound"],
                  "invalid_witness": j.counts["invalid_witness"], "disputed": j.counts["disputed"]}
        kept += [(cell, m, float(v), "{}", flag if m in ("score", "unsound", "invalid_witness") else None)
                 for m, v in values.items()]
    return kept
