"""Leaderboard queries: flags, ranks, machines, Pareto frontiers, history, read-only SQL, merge."""

import itertools
import json
import sqlite3

import numpy as np
import pytest
from synthetic import MACHINE_B, accuracy, board, identity, latency, new_run, open_store, record, size

from harness.api import MetricSpec
from harness.query.leaderboard import frontier_of, leaderboard
from harness.query.pareto import non_dominated
from harness.query.refs import QueryError

#: (method, params, top1, latency_ms, gzip_bytes): dense 0.96; sparsity 0.9 fails the quality gate.
ENTRIES = [
    ("dense", {}, 0.96, 1.0, 1000.0),                             # frontier: between the two below
    ("global-magnitude", {"sparsity": 0.3}, 0.958, 0.8, 800.0),   # frontier: faster, retained 0.998
    ("global-magnitude", {"sparsity": 0.5}, 0.955, 0.9, 600.0),   # dominated on latency by 0.3
    ("global-magnitude", {"sparsity": 0.9}, 0.70, 0.5, 200.0),    # fastest, but flagged
    ("int8-dynamic", {}, 0.961, 1.2, 300.0),                      # frontier: most accurate
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "l.db"
    store = open_store(path)
    run = new_run(store, tag="nightly")
    board(store, run, ENTRIES, backends=("onnxruntime-cpu", "torch-cpu"))
    store.close()
    return path


def test_flagged_rows_are_shown_but_never_ranked(db, harness_cli):
    out = harness_cli("leaderboard", "--db", db, "--sort", "p50_ms", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = [r for r in json.loads(out.stdout) if r["backend"] == "onnxruntime-cpu"]
    assert len(rows) == 5
    flagged = [r for r in rows if r["flags"]]
    assert [r["method_params"] for r in flagged] == ["sparsity=0.9"]
    assert flagged[0]["flags"] == "quality gate: top1 retained 0.7292 < 0.99" and flagged[0]["rank"] is None
    everything = json.loads(out.stdout)
    ranked = [r for r in everything if r["rank"] is not None]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert everything[-2:] == [r for r in everything if r["flags"]]  # flagged rows come last
    assert ranked[0]["method_params"] == "sparsity=0.3"  # the fastest that passes the gate
    table = harness_cli("leaderboard", "--db", db, "--sort", "p50_ms")
    assert "quality gate: top1 retained 0.7292 < 0.99" in table.stdout


def test_pareto_frontier_per_backend_leaves_flagged_rows_out(db, harness_cli):
    out = harness_cli("leaderboard", "--db", db, "--pareto", "top1:max,p50_ms:min", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    on_front = {(r["backend"], r["method"], r["method_params"]) for r in rows}
    assert on_front == {(b, m, p) for b in ("onnxruntime-cpu", "torch-cpu")
                        for m, p in (("int8-dynamic", ""), ("dense", ""), ("global-magnitude", "sparsity=0.3"))}
    assert "6 of 10 entries" in out.stderr and "left out: 2 flagged (quality gate)" in out.stderr
    # Three objectives, one frontier across backends, direction from the catalogue.
    three = harness_cli("leaderboard", "--db", db, "--pareto", "top1,p50_ms,gzip_bytes", "--pareto-by", "none",
                        "--format", "json")
    assert three.returncode == 0, three.stderr
    methods = {(r["method"], r["method_params"]) for r in json.loads(three.stdout)}
    assert ("global-magnitude", "sparsity=0.5") in methods  # smaller than 0.3: on the 3-D frontier
    assert ("global-magnitude", "sparsity=0.9") not in methods


@pytest.mark.parametrize("arg, message", [
    ("top1", "give two or three objectives"),
    ("top1,p50_ms,gzip_bytes,params", "give two or three objectives"),
    ("top1:up,p50_ms", "must be 'max' or 'min', not 'up'"),
    ("nope,p50_ms", "no column 'nope'"),
    ("weight_sparsity,p50_ms", "has no direction"),
    ("top1,top1", "named twice"),
])
def test_pareto_usage_errors(db, harness_cli, arg, message):
    out = harness_cli("leaderboard", "--db", db, "--pareto", arg)
    assert out.returncode == 2 and message in out.stderr


def test_non_dominated_matches_brute_force():
    rng = np.random.default_rng(3)
    for k in (2, 3):
        values = rng.integers(0, 6, size=(60, k)).astype(float)  # many ties
        expected = [not any(np.all(values[j] <= values[i]) and np.any(values[j] < values[i])
                            for j in range(len(values))) for i in range(len(values))]
        assert non_dominated(values).tolist() == expected


def test_machines_are_kept_apart(tmp_path, harness_cli):
    path = tmp_path / "two.db"
    store = open_store(path)
    board(store, new_run(store), ENTRIES)
    board(store, new_run(store, machine=MACHINE_B), [(m, p, t, ms * 3, g) for m, p, t, ms, g in ENTRIES])
    store.close()
    latest = leaderboard(path)  # the latest run's machine only
    assert set(latest["machine"]) == {"bbbb2222"} and len(latest) == 5
    a = leaderboard(path, machine="aaaa")
    assert set(a["machine"]) == {"aaaa1111"}
    both = leaderboard(path, machine="all", sort="p50_ms")
    assert len(both) == 10
    for _, rows in both.groupby("machine"):  # ranks restart on each machine
        assert sorted(rows["rank"].dropna().tolist()) == [1, 2, 3, 4]
    bad = harness_cli("leaderboard", "--db", path, "--machine", "cccc")
    assert bad.returncode == 2 and "matches no machine (machines: aaaa1111, bbbb2222)" in bad.stderr
    front = harness_cli("leaderboard", "--db", path, "--machine", "all", "--pareto", "top1,p50_ms", "--format", "json")
    assert {r["machine"] for r in json.loads(front.stdout)} == {"aaaa1111", "bbbb2222"}


def test_history_shows_a_metric_over_runs(tmp_path, harness_cli):
    path = tmp_path / "h.db"
    store = open_store(path)
    for night in range(3):
        board(store, new_run(store, tag="nightly"), [(m, p, t, ms * (1 + night), g) for m, p, t, ms, g in ENTRIES],
              seed=night)
    board(store, new_run(store), ENTRIES, seed=9)
    store.close()
    out = harness_cli("history", "--db", path, "--metric", "p50_ms", "--method", "dense", "--tag", "nightly",
                      "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["run_id"] for r in rows] == [1, 2, 3] and {r["metric"] for r in rows} == {"p50_ms@b1"}
    assert [round(r["value"]) for r in rows] == [1, 2, 3]
    all_runs = json.loads(harness_cli("history", "--db", path, "--metric", "top1", "--method", "dense",
                                      "--format", "json").stdout)
    assert [r["run_id"] for r in all_runs] == [1, 2, 3, 4]
    bad = harness_cli("history", "--db", path, "--metric", "p51_ms")
    assert bad.returncode == 2 and "--metric 'p51_ms': no such metric" in bad.stderr


def test_sql_is_read_only(db, harness_cli):
    before = db.read_bytes()
    out = harness_cli("sql", "--db", db, "SELECT metric, count(*) AS n FROM latest_results GROUP BY metric "
                      "ORDER BY metric", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert {r["metric"]: r["n"] for r in json.loads(out.stdout)}["top1"] == 10
    for statement in ("DELETE FROM runs", "CREATE TEMP TABLE t (x)", "UPDATE runs SET tag = 'x'"):
        refused = harness_cli("sql", "--db", db, statement)
        assert refused.returncode == 2 and "read-only" in refused.stderr, statement
    syntax = harness_cli("sql", "--db", db, "SELEC 1")
    assert syntax.returncode == 2 and "SQL error" in syntax.stderr
    assert db.read_bytes() == before


def _counts(path):
    conn = sqlite3.connect(path)
    try:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("runs", "cells", "measurements", "sample_sets"))
    finally:
        conn.close()


def test_merge_joins_machines_without_duplicates(tmp_path, harness_cli):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    store = open_store(a)
    board(store, new_run(store, tag="nightly"), ENTRIES)
    store.close()
    store = open_store(b)
    board(store, new_run(store, machine=MACHINE_B), ENTRIES[:2], seed=4)
    board(store, new_run(store, machine=MACHINE_B), ENTRIES[:2], seed=5)
    store.close()
    out = tmp_path / "c.db"
    first = harness_cli("merge", a, b, "-o", out)
    assert first.returncode == 0, first.stderr
    expected = tuple(x + y for x, y in zip(_counts(a), _counts(b)))
    assert _counts(out) == expected
    again = harness_cli("merge", b, a, "-o", out)  # idempotent, in any order
    assert again.returncode == 0 and "0 runs added, 3 already there" in again.stderr
    assert _counts(out) == expected
    # Every measurement and its samples survive with remapped ids.
    conn = sqlite3.connect(out)
    samples = conn.execute("SELECT r.machine_hash, s.samples FROM measurements m JOIN sample_sets s ON "
                           "s.id = m.sample_set_id JOIN cells c ON c.id = m.cell_id JOIN runs r ON r.id = c.run_id "
                           "WHERE m.metric = 'p50_ms' ORDER BY r.machine_hash, m.id").fetchall()
    conn.close()
    src = sqlite3.connect(a)
    own = [s for (s,) in src.execute("SELECT s.samples FROM measurements m JOIN sample_sets s ON s.id = "
                                     "m.sample_set_id WHERE m.metric = 'p50_ms' ORDER BY m.id")]
    src.close()
    assert [s for h, s in samples if h.startswith("aaaa")] == own
    board_all = leaderboard(out, machine="all")
    assert sorted(board_all.groupby("machine").size().tolist()) == [2, 5]
    missing = harness_cli("merge", tmp_path / "none.db", "-o", out)
    assert missing.returncode == 2 and "no leaderboard database" in missing.stderr


def test_leaderboard_filters_keep_shared_size_columns(db):
    frame = leaderboard(db, backend="torch-cpu", method="global-magnitude")
    assert len(frame) == 3 and set(frame["backend"]) == {"torch-cpu"}
    assert frame["gzip_bytes"].notna().all()
    assert list(itertools.islice(frame.columns, 0, 8)) == ["model", "dataset", "method", "method_params", "seed",
                                                          "backend", "backend_params", "machine"]
    with pytest.raises(QueryError):
        leaderboard(db, machine="ab")


def test_a_suite_only_flag_keeps_its_row_out_of_that_suites_rankings_only(tmp_path):
    """``latency only: ...`` (and a third-party suite's ``SUITE only: ...``) scopes by the metric catalogue."""
    path = tmp_path / "scoped.db"
    store = open_store(path)
    store.register_metrics("npu-timing", [MetricSpec("npu_ms", "ms", False, "latency on an emulated NPU")])
    run = new_run(store)
    for method, top1, ms, flag in (("dense", 0.96, 1.0, None), ("int8-dynamic", 0.97, 0.5, "latency only: emulated")):
        record(store, run, identity(method, {}, None, "size"), size(1000.0 if flag else 2000.0, 0.0))
        record(store, run, identity(method, {}, "onnxruntime-cpu", "accuracy"), accuracy(top1, 0.96))
        record(store, run, identity(method, {}, "onnxruntime-cpu", "latency"),
               [dict(m, flag=flag) for m in latency(ms)])
        record(store, run, identity(method, {}, "onnxruntime-cpu", "npu-timing"),
               [{"metric": "npu_ms", "value": ms, "unit": "ms",
                 "flag": "npu-timing only: emulated" if flag else None}])
    store.close()

    def ranks(sort):
        board = leaderboard(path, sort=sort)
        return dict(zip(board["method"], board["rank"].astype(object).where(board["rank"].notna(), None)))

    assert ranks("top1") == {"int8-dynamic": 1, "dense": 2}  # its accuracy is real: ranked
    assert ranks("gzip_bytes") == {"int8-dynamic": 1, "dense": 2}
    assert ranks("p50_ms") == {"dense": 1, "int8-dynamic": None}  # its latency is not a hardware figure
    assert ranks("npu_ms") == {"dense": 1, "int8-dynamic": None}  # the third-party suite's own scope
    board = leaderboard(path)
    assert set(frontier_of(path, board, "top1:max,gzip_bytes:min").rows["method"]) == {"int8-dynamic"}
    latency_front = frontier_of(path, board, "top1:max,p50_ms:min")
    assert set(latency_front.rows["method"]) == {"dense"} and sum(latency_front.left_out.values()) == 1
