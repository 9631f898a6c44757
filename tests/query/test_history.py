"""A metric over runs (:func:`harness.query.history.history`), called in-process on leaderboards
recorded through the real store (:mod:`synthetic`): the series, its filters and its errors."""

from __future__ import annotations

import pytest
from synthetic import MACHINE_A, MACHINE_B, accuracy, identity, latency, new_run, open_store, record

from harness.query.history import COLUMNS, history
from harness.query.refs import QueryError

BACKEND = "onnxruntime-cpu"


def top1_run(store, value: float, *, machine=MACHINE_A, tag=None, method="dense", params=None) -> int:
    """A run with one accuracy cell of ``method`` whose top1 is ``value`` (dense at 0.9)."""
    run = new_run(store, machine=machine, tag=tag)
    record(store, run, identity(method, params or {}, BACKEND, "accuracy"), accuracy(value, 0.9))
    return run


@pytest.fixture
def db(tmp_path):
    """Four runs on machine A (two tagged ``nightly``), then one on machine B (the latest)."""
    path = tmp_path / "history.db"
    store = open_store(path)
    runs = [top1_run(store, 0.90, tag="nightly"), top1_run(store, 0.91),
            top1_run(store, 0.92, tag="nightly"), top1_run(store, 0.93)]
    record(store, runs[3], identity("global-magnitude", {"sparsity": 0.5}, BACKEND, "accuracy"),
           accuracy(0.85, 0.9))
    runs.append(top1_run(store, 0.50, machine=MACHINE_B))
    store.close()
    return path, runs


def test_series_is_oldest_run_first_on_the_latest_runs_machine(db):
    path, runs = db
    on_b = history(path, "top1")
    assert list(on_b.columns) == COLUMNS
    assert on_b["run_id"].tolist() == [runs[4]] and on_b["machine"].tolist() == ["bbbb2222"]

    on_a = history(path, "top1", machine="aaaa", method="dense")
    assert on_a["run_id"].tolist() == runs[:4]
    assert on_a["value"].tolist() == pytest.approx([0.90, 0.91, 0.92, 0.93])
    assert on_a["started_at"].is_monotonic_increasing
    assert set(on_a["machine"]) == {"aaaa1111"}
    row = on_a.iloc[0]
    assert (row["model"], row["dataset"], row["method"], row["backend"], row["metric"]) == \
        ("lenet5", "digits", "dense", BACKEND, "top1")
    assert row["backend_params"] == "threads=1" and row["method_params"] == ""


def test_all_machines_and_method_filter(db):
    path, runs = db
    everything = history(path, "top1", machine="all")
    assert everything["run_id"].tolist() == [runs[0], runs[1], runs[2], runs[3], runs[3], runs[4]]
    pruned = history(path, "top1", machine="all", method="global-magnitude")
    assert pruned["method_params"].tolist() == ["sparsity=0.5"]
    assert pruned["value"].tolist() == pytest.approx([0.85])
    assert history(path, "top1", machine="all", backend="torch-cpu").empty


def test_tag_keeps_only_the_tagged_runs(db):
    path, runs = db
    nightly = history(path, "top1", machine="aaaa", tag="nightly")
    assert nightly["run_id"].tolist() == [runs[0], runs[2]]
    assert set(nightly["tag"]) == {"nightly"}
    none = history(path, "top1", machine="all", tag="weekly")
    assert none.empty and list(none.columns) == COLUMNS


@pytest.mark.parametrize("tag, words", [("latest", "reserved"), ("9lives", "must start with a letter")])
def test_bad_tags_are_query_errors(db, tag, words):
    path, _ = db
    with pytest.raises(QueryError, match=words):
        history(path, "top1", tag=tag)


def test_unknown_metric_lists_the_known_ones(db):
    path, _ = db
    with pytest.raises(QueryError) as err:
        history(path, "top5")
    assert "--metric 'top5'" in str(err.value)
    assert "top1, top1_delta, top1_retained" in str(err.value)


@pytest.mark.parametrize("machine, words", [("aa", "at least 4 characters"), ("cccc", "matches no machine")])
def test_bad_machines_are_query_errors(db, machine, words):
    path, _ = db
    with pytest.raises(QueryError, match=words):
        history(path, "top1", machine=machine)


def test_a_flag_travels_with_its_value(db):
    path, runs = db
    retained = history(path, "top1_retained", machine="all", method="global-magnitude")
    assert retained["flag"].tolist() == ["quality gate: top1 retained 0.9444 < 0.99"]
    dense = history(path, "top1_retained", machine="aaaa", method="dense")
    assert dense["flag"].isna().all() and len(dense) == 4


def test_batch_size_keeps_one_column_of_a_batched_metric(tmp_path):
    path = tmp_path / "latency.db"
    store = open_store(path)
    runs = []
    for i, centre in enumerate((1.0, 1.5)):
        run = new_run(store)
        cell = identity("dense", {}, BACKEND, "latency")
        record(store, run, cell, latency(centre, seed=i, batch=1) + latency(centre * 8, seed=i, batch=32))
        runs.append(run)
    store.close()
    both = history(path, "p50_ms")
    assert both["metric"].tolist() == ["p50_ms@b1", "p50_ms@b32"] * 2
    b32 = history(path, "p50_ms", batch_size=32)
    assert b32["metric"].tolist() == ["p50_ms@b32", "p50_ms@b32"]
    assert b32["run_id"].tolist() == runs
    assert b32["value"].tolist() == pytest.approx([8.0, 12.0], rel=0.05)
