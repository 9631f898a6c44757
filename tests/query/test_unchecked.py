"""A figure whose checks did not run is flagged "unchecked: ..." and never ranked, and a ranked figure names
the checks behind it (the ``checks`` column)."""

from __future__ import annotations

from synthetic import accuracy, identity, latency, new_run, open_store, record, size

from harness.query.leaderboard import leaderboard


def _without(measurements, metric):
    return [m for m in measurements if m["metric"] != metric]


def test_rows_without_their_checks_are_unchecked_and_unranked(tmp_path):
    db = tmp_path / "b.db"
    store = open_store(db)
    run = new_run(store)
    for method, lat, top1 in (("dense", latency(1.0), 0.98), ("old", _without(latency(0.5), "check_test01"), 0.98),
                              ("half", latency(0.7) + _without(latency(0.6, batch=32), "check_test01"), 0.97)):
        record(store, run, identity(method, {}, "onnxruntime-cpu", "latency"), lat)
        acc = accuracy(top1, 0.98)
        record(store, run, identity(method, {}, "onnxruntime-cpu", "accuracy"),
               _without(acc, "check_agreement") if method == "old" else acc)
    store.close()
    board = leaderboard(db, sort="p50_ms@b1").set_index("method")
    # "old" is the fastest, but neither its timed call nor its agreement was checked (a result stored before
    # the checks existed): flagged, never ranked
    assert set(board.loc["old", "flags"].split("; ")) == {"unchecked: test01@b1 has no result (needed by p50_ms@b1)",
                                                         "unchecked: agreement has no result (needed by top1)"}
    assert board.loc["old", "rank"] is not None and str(board.loc["old", "rank"]) == "<NA>"
    # a figure at batch 32 without its check leaves the whole row out, as every flag does
    assert "unchecked: test01@b32 has no result" in board.loc["half", "flags"]
    assert str(board.loc["half", "rank"]) == "<NA>"
    assert int(board.loc["dense", "rank"]) == 1 and not isinstance(board.loc["dense", "flags"], str)
    assert board.loc["dense", "checks"] == "claims, test01@b1"
    assert leaderboard(db, sort="top1").set_index("method").loc["dense", "checks"] == "claims, agreement"


def test_size_figures_need_the_claims_check(tmp_path):
    db = tmp_path / "s.db"
    store = open_store(db)
    run = new_run(store)
    record(store, run, identity("dense", {}, None, "size"), size(1000.0, 0.0))
    record(store, run, identity("liar", {}, None, "size"), _without(size(10.0, 0.9), "check_claims"))
    store.close()
    board = leaderboard(db, sort="gzip_bytes").set_index("method")
    assert board.loc["liar", "flags"] == "unchecked: claims has no result (needed by gzip_bytes)"
    assert int(board.loc["dense", "rank"]) == 1 and board.loc["dense", "checks"] == "claims"


def test_a_check_that_could_not_run_keeps_the_writers_reason(tmp_path):
    db = tmp_path / "u.db"
    store = open_store(db)
    run = new_run(store)
    lat = [dict(m, value=None, flag="unchecked: test01: the session has neither bind nor timed_outputs")
           if m["metric"] == "check_test01" else m for m in latency(1.0)]
    record(store, run, identity("dense", {}, "remote", "latency"), lat)
    store.close()
    board = leaderboard(db, sort="p50_ms")
    assert board.loc[0, "flags"] == "unchecked: test01: the session has neither bind nor timed_outputs"
    assert str(board.loc[0, "rank"]) == "<NA>"
