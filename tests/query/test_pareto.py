"""Pareto frontiers (:mod:`harness.query.pareto`) on hand-made points and frames: dominance, objective
parsing and its errors, grouping per machine and backend, and the rows left out (flagged, missing)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from harness.query.columns import Catalogue
from harness.query.pareto import Objective, frontier, non_dominated, parse_objectives
from harness.query.refs import QueryError

CATALOGUE = Catalogue(suites={"top1": "accuracy", "p50_ms": "latency", "gzip_bytes": "size"},
                      higher={"top1": True, "p50_ms": False, "gzip_bytes": False})
TOP1, P50 = Objective("top1", True), Objective("p50_ms", False)


def brute_force(values) -> list[bool]:
    """Row i is kept unless some row is <= everywhere and < somewhere (all minimised)."""
    v = np.asarray(values, dtype=float)
    return [not any(np.all(v[j] <= v[i]) and np.any(v[j] < v[i]) for j in range(len(v))) for i in range(len(v))]


# ------------------------------------------------------------------ non_dominated


def test_non_dominated_on_hand_made_points():
    points = [[1, 5], [2, 3], [3, 4], [4, 1], [5, 5]]  # [3,4] is beaten by [2,3]; [5,5] by everything
    assert non_dominated(points).tolist() == [True, True, False, True, False]


def test_equal_rows_are_all_kept_and_ties_on_one_objective_are_dominated():
    assert non_dominated([[1, 1], [1, 1], [2, 0]]).tolist() == [True, True, True]
    # [1, 2] ties [1, 1] on the first objective and is worse on the second.
    assert non_dominated([[1, 2], [1, 1]]).tolist() == [False, True]
    assert non_dominated([[3, 3], [3, 3], [1, 1]]).tolist() == [False, False, True]


def test_non_dominated_matches_brute_force_on_random_points():
    rng = np.random.default_rng(7)
    for k in (2, 3):
        pts = rng.integers(0, 6, size=(40, k))  # small integers: many ties and duplicates
        assert non_dominated(pts).tolist() == brute_force(pts)


def test_non_dominated_edge_shapes():
    assert non_dominated(np.empty((0, 2))).tolist() == []
    assert non_dominated([[4, 2]]).tolist() == [True]


def test_a_nan_row_is_kept_and_dominates_nothing():
    # NaN compares false both ways: nothing dominates such a row, and it dominates no other row
    # (the frontier drops rows without a value before it gets here).
    assert non_dominated([[math.nan, 1.0], [0.0, 0.0], [1.0, 1.0]]).tolist() == [True, True, False]
    assert non_dominated([[math.nan, 0.0], [1.0, 1.0]]).tolist() == [True, True]


# ------------------------------------------------------------------ parse_objectives


COLUMNS = ["top1", "p50_ms@b1", "p50_ms@b32", "gzip_bytes"]
DIRECTIONS = {"top1": True, "p50_ms": False, "gzip_bytes": False, "weight_sparsity": None}


def test_parse_objectives_directions_and_columns():
    objs = parse_objectives("top1:max, p50_ms:min", COLUMNS, DIRECTIONS)
    assert objs == [Objective("top1", True), Objective("p50_ms@b1", False)]  # the smallest batch's column
    assert [str(o) for o in objs] == ["top1:max", "p50_ms@b1:min"]
    # Without a direction the catalogue's is taken; an explicit one wins over it.
    assert parse_objectives("top1,gzip_bytes:max", COLUMNS, DIRECTIONS) == [Objective("top1", True),
                                                                             Objective("gzip_bytes", True)]
    assert parse_objectives("top1,p50_ms@b32,gzip_bytes", COLUMNS, DIRECTIONS)[1] == Objective("p50_ms@b32", False)


@pytest.mark.parametrize("text, words", [
    ("top1", ["two or three objectives"]),
    ("top1,p50_ms,gzip_bytes,top1", ["two or three objectives"]),
    ("top1,latency:min", ["--pareto", "no column 'latency'"]),
    ("top1:up,p50_ms", ["'top1:up'", "'max' or 'min', not 'up'"]),
    ("top1,weight_sparsity", ["'weight_sparsity'", "no direction"]),
    ("top1:max,top1:min", ["named twice"]),
])
def test_parse_objectives_errors_name_the_bad_objective(text, words):
    columns = [*COLUMNS, "weight_sparsity"]
    with pytest.raises(QueryError) as err:
        parse_objectives(text, columns, DIRECTIONS)
    for word in words:
        assert word in str(err.value)


def test_an_unknown_objective_column_is_keyed_to_the_option():
    with pytest.raises(QueryError) as err:
        parse_objectives("top1,nope", COLUMNS, DIRECTIONS)
    assert err.value.key == "--pareto"
    assert "columns: top1, p50_ms@b1" in str(err.value)


# ------------------------------------------------------------------ frontier


def frame(rows: list[tuple]) -> pd.DataFrame:
    """A leaderboard frame: (machine, backend, method, top1, p50_ms, flags)."""
    return pd.DataFrame(rows, columns=["machine", "backend", "method", "top1", "p50_ms", "flags"])


def test_frontier_per_backend_best_first():
    f = frame([("m1", "ort", "a", 0.90, 2.0, None), ("m1", "ort", "b", 0.80, 1.0, None),
               ("m1", "ort", "c", 0.70, 3.0, None),  # beaten by a and b
               ("m1", "torch", "a", 0.90, 5.0, None), ("m1", "torch", "c", 0.70, 6.0, None)])
    front = frontier(f, [TOP1, P50], ["backend"], catalogue=CATALOGUE)
    assert list(zip(front.rows["backend"], front.rows["method"])) == [("ort", "a"), ("ort", "b"), ("torch", "a")]
    assert front.considered == 5 and not front.left_out
    assert front.summary() == "Pareto frontier of top1:max, p50_ms:min per backend: 3 of 5 entries"


def test_frontier_never_compares_machines():
    f = frame([("m1", "ort", "a", 0.90, 1.0, None), ("m2", "ort", "b", 0.80, 9.0, None)])
    grouped = frontier(f, [TOP1, P50], [], catalogue=CATALOGUE)
    assert sorted(grouped.rows["method"]) == ["a", "b"]  # b is beaten only by another machine's a
    assert grouped.groups == []
    # Without a machine column everything is one group.
    flat = frontier(f.drop(columns="machine"), [TOP1, P50], ["machine"], catalogue=CATALOGUE)
    assert flat.rows["method"].tolist() == ["a"]


def test_flagged_and_incomplete_rows_are_left_out_with_the_reason():
    f = frame([("m1", "ort", "dense", 0.90, 2.0, None),
               ("m1", "ort", "gated", 0.95, 1.0, "quality gate: top1 retained 0.9 < 0.99"),
               ("m1", "ort", "nolat", 0.99, math.nan, None),
               ("m1", "ort", "slow", 0.85, 3.0, "")])  # an empty flag is no flag
    front = frontier(f, [TOP1, P50], ["backend"], catalogue=CATALOGUE)
    # "gated" would dominate "dense"; left out, it cannot.
    assert front.rows["method"].tolist() == ["dense"]
    assert front.left_out == {"flagged (quality gate)": 1, "without p50_ms": 1}
    assert front.considered == 4
    assert front.summary().endswith("1 of 4 entries; left out: 1 flagged (quality gate); 1 without p50_ms")


def test_left_out_rows_are_counted_by_the_kind_of_flag_not_listed_one_by_one():
    gated = [("m1", "ort", f"g{i}", 0.95, 1.0, f"quality gate: top1 retained {0.9 - i / 100:.2f} < 0.99")
             for i in range(50)]
    both = [("m1", "ort", "both", 0.95, 1.0, "soundness: wrong verdict; quality gate: top1 retained 0.5 < 0.99")]
    front = frontier(frame([("m1", "ort", "dense", 0.9, 2.0, None), *gated, *both]), [TOP1, P50], ["backend"],
                     catalogue=CATALOGUE)
    assert front.left_out == {"flagged (quality gate)": 50, "flagged (quality gate, soundness)": 1}
    assert front.summary().endswith("left out: 50 flagged (quality gate); 1 flagged (quality gate, soundness)")


def test_a_suite_scoped_flag_excludes_only_from_that_suites_objectives():
    f = pd.DataFrame([("m1", "ort", "emu", 0.95, 1.0, 100.0, "latency only: timed under emulation"),
                      ("m1", "ort", "real", 0.90, 2.0, 200.0, None)],
                     columns=["machine", "backend", "method", "top1", "p50_ms", "gzip_bytes", "flags"])
    latency = frontier(f, [TOP1, P50], [], catalogue=CATALOGUE)
    assert latency.rows["method"].tolist() == ["real"]
    assert latency.left_out == {"flagged (latency only)": 1}
    size = frontier(f, [TOP1, Objective("gzip_bytes", False)], [], catalogue=CATALOGUE)
    assert size.rows["method"].tolist() == ["emu"]  # its accuracy and size are real
    assert not size.left_out


def test_frontier_of_three_objectives_and_min_first():
    f = pd.DataFrame([(m, t, p, g) for m, (t, p, g) in zip("abcd", [(0.9, 2.0, 30.0), (0.8, 1.0, 40.0),
                                                                   (0.7, 3.0, 10.0), (0.7, 3.0, 50.0)])],
                     columns=["method", "top1", "p50_ms", "gzip_bytes"]).assign(flags=None)
    front = frontier(f, [P50, TOP1, Objective("gzip_bytes", False)], None, catalogue=CATALOGUE)
    assert front.rows["method"].tolist() == ["b", "a", "c"]  # d is beaten by c; sorted by p50_ms ascending


def test_frontier_of_a_frame_without_flags_column():
    f = pd.DataFrame([("a", 0.9, 2.0), ("b", 0.8, 3.0)], columns=["method", "top1", "p50_ms"])
    front = frontier(f, [TOP1, P50], None, catalogue=CATALOGUE)
    assert front.rows["method"].tolist() == ["a"]


def test_frontier_rejects_an_unknown_group_column():
    f = frame([("m1", "ort", "a", 0.9, 1.0, None)])
    with pytest.raises(QueryError, match="no column 'hardware' to group by"):
        frontier(f, [TOP1, P50], ["hardware"], catalogue=CATALOGUE)


def test_frontier_of_an_empty_or_all_flagged_frame_is_empty():
    f = frame([("m1", "ort", "a", 0.9, 1.0, "soundness: wrong verdict")])
    front = frontier(f, [TOP1, P50], ["backend"], catalogue=CATALOGUE)
    assert front.rows.empty and front.considered == 1
    assert front.left_out == {"flagged (soundness)": 1}


def test_frontier_keeps_exactly_the_brute_force_rows():
    rng = np.random.default_rng(3)
    rows = [("m1", "ort", f"x{i}", float(t), float(p), None)
            for i, (t, p) in enumerate(itertools.islice(zip(rng.integers(0, 5, 30), rng.integers(0, 5, 30)), 30))]
    f = frame(rows)
    front = frontier(f, [TOP1, P50], [], catalogue=CATALOGUE)
    keep = brute_force(np.column_stack([-f["top1"], f["p50_ms"]]))
    assert sorted(front.rows["method"]) == sorted(f["method"][keep])
    assert front.rows["top1"].is_monotonic_decreasing
