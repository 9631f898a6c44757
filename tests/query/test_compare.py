"""harness compare: significance on raw samples, threshold, noise floor, machines, run references."""

import json

import pytest
from synthetic import MACHINE_B, accuracy, identity, latency, new_run, open_store, record, size

from harness.query.compare import MachineMismatch, compare_runs
from harness.query.refs import QueryError

FAST = identity("dense", {}, "onnxruntime-cpu", "latency")
OTHER = identity("global-magnitude", {"sparsity": 0.5}, "onnxruntime-cpu", "latency")
ACC = identity("global-magnitude", {"sparsity": 0.5}, "onnxruntime-cpu", "accuracy")
SIZE = identity("global-magnitude", {"sparsity": 0.5}, None, "size")


def nightly(store, seed, *, fast_ms=1.0, other_ms=2.0, top1=0.95, machine=None, tag="nightly"):
    run = new_run(store, tag=tag, **({"machine": machine} if machine else {}))
    record(store, run, FAST, latency(fast_ms, seed=seed))
    record(store, run, OTHER, latency(other_ms, seed=seed + 500))
    record(store, run, ACC, accuracy(top1, 0.96))
    record(store, run, SIZE, size(1000.0, 0.5))
    return run


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "l.db"
    store = open_store(path)
    for seed in range(5):  # five quiet nights: history for the noise floor
        nightly(store, seed)
    yield path, store
    store.close()


def by_metric(result, method="dense"):
    rows = result.rows
    return {r["metric"]: r for r in rows[rows["method"] == method].to_dict("records")}


def test_a_real_latency_regression_is_found_and_fails_the_run(db, harness_cli):
    path, store = db
    nightly(store, 99, fast_ms=1.25)  # dense 25% slower; the rest unchanged
    result = compare_runs(path, "previous", "latest")
    rows = by_metric(result)
    assert rows["p50_ms@b1"]["verdict"] == "regression"
    assert rows["p50_ms@b1"]["test"] == "mann-whitney-u" and rows["p50_ms@b1"]["q_value"] < 1e-6
    assert rows["p50_ms@b1"]["change"] == pytest.approx(0.25, abs=0.03)
    assert rows["throughput_sps@b1"]["verdict"] == "regression"  # direction from the metric catalogue
    assert set(result.rows.loc[result.rows["verdict"] == "regression", "method"]) == {"dense"}
    assert result.exit_code == 1
    out = harness_cli("compare", "previous", "latest", "--db", path, "--format", "json")
    assert out.returncode == 1, out.stderr
    listed = json.loads(out.stdout)
    assert {r["verdict"] for r in listed} == {"regression"} and {r["method"] for r in listed} == {"dense"}
    assert "regressions" in out.stderr and "run 5 (base) with run 6 (new)" in out.stderr


def test_noise_alone_flags_nothing(db, harness_cli):
    path, store = db
    nightly(store, 123)
    result = compare_runs(path, "previous", "latest")
    assert result.count("regression") == 0 and result.count("improvement") == 0
    out = harness_cli("compare", "previous", "latest", "--db", path)
    assert out.returncode == 0, out.stderr
    assert "0 regressions" in out.stderr


def test_faster_is_an_improvement_not_a_failure(db):
    path, store = db
    nightly(store, 7, other_ms=1.5)
    result = compare_runs(path, "previous", "latest")
    rows = by_metric(result, "global-magnitude")
    assert rows["p50_ms@b1"]["verdict"] == "improvement"
    assert result.exit_code == 0


def test_deterministic_metrics_use_the_threshold_and_say_so(db):
    path, store = db
    nightly(store, 8, top1=0.85)  # 10 points lower: beyond 0.05
    rows = by_metric(compare_runs(path, "previous", "latest"), "global-magnitude")
    assert rows["top1"]["test"] == "deterministic" and rows["top1"]["verdict"] == "regression"
    assert rows["top1"]["change_kind"] == "absolute" and rows["top1"]["change"] == pytest.approx(-0.10)
    assert rows["gzip_bytes"]["verdict"] == "ok" and rows["gzip_bytes"]["change"] == 0
    assert rows["weight_sparsity"]["test"] == "deterministic"
    # A change within the threshold is reported but not a regression.
    nightly(store, 9, top1=0.83)
    rows = by_metric(compare_runs(path, "previous", "latest"), "global-magnitude")
    assert rows["top1"]["verdict"] == "ok" and "within threshold" in rows["top1"]["why"]


def test_the_noise_floor_learned_from_history_absorbs_a_noisy_cell(tmp_path):
    store = open_store(tmp_path / "n.db")
    # A cell whose median swings about 10% from night to night, with tight samples each night.
    for i, ms in enumerate([1.0, 1.12, 0.97, 1.1, 1.08, 0.95]):
        nightly(store, i, fast_ms=ms)
    nightly(store, 50, fast_ms=1.1)  # +16% against the last night: significant, but this cell's usual swing
    result = compare_runs(tmp_path / "n.db", "previous", "latest")
    row = by_metric(result)["p50_ms@b1"]
    assert row["q_value"] < 0.01 and row["change"] > 0.05
    assert row["noise_floor"] > row["change"]
    assert row["verdict"] == "ok" and "noise floor" in row["why"]
    # Without history the same change is a regression.
    assert by_metric(compare_runs(tmp_path / "n.db", "previous", "latest", history=0))["p50_ms@b1"]["verdict"] == \
        "regression"
    store.close()


def test_a_higher_threshold_hides_a_smaller_regression(db):
    path, store = db
    nightly(store, 11, fast_ms=1.25)
    assert compare_runs(path, "previous", "latest", threshold=0.5).exit_code == 0


def test_runs_of_different_machines_are_refused_unless_forced(db, harness_cli):
    path, store = db
    nightly(store, 12, machine=MACHINE_B)
    with pytest.raises(MachineMismatch, match="different machines"):
        compare_runs(path, "5", "6")
    out = harness_cli("compare", "5", "6", "--db", path)
    assert out.returncode == 2
    assert "aaaa1111 (Test CPU A, 2 cores)" in out.stderr and "bbbb2222 (Test CPU B, 8 cores)" in out.stderr
    assert "--force" in out.stderr
    forced = harness_cli("compare", "5", "6", "--db", path, "--force")
    assert forced.returncode in (0, 1) and "forced across machines" in forced.stderr


def test_run_references(db, harness_cli):
    path, store = db
    untagged = nightly(store, 20, tag=None)
    result = compare_runs(path, "nightly", "latest")  # the newest nightly before the latest run
    assert (result.base["id"], result.new["id"]) == (5, untagged)
    assert compare_runs(path, "previous", "nightly").base["id"] == 4
    with pytest.raises(QueryError, match="no run of suite 'synthetic' without a tag before run 6"):
        compare_runs(path, "previous", "latest")
    with pytest.raises(QueryError, match="no run 42"):
        compare_runs(path, "42", "latest")
    with pytest.raises(QueryError, match="same run"):
        compare_runs(path, "6", "latest")
    with pytest.raises(QueryError, match="--metric nope"):
        compare_runs(path, "1", "2", metrics=["nope"])
    bad = harness_cli("compare", "weekly", "latest", "--db", path)
    assert bad.returncode == 2 and "no run tagged 'weekly'" in bad.stderr and "tags: nightly" in bad.stderr
    only = compare_runs(path, "1", "2", metrics=["top1"])
    assert set(only.rows["metric"]) == {"top1"}


def test_cells_present_on_one_side_only_are_counted(db):
    path, store = db
    run = new_run(store, tag="nightly")
    record(store, run, FAST, latency(1.0, seed=3))
    result = compare_runs(path, "previous", "latest")
    assert result.only_base == 3 and result.only_new == 0
    assert "3 cells only in the base run" in result.summary()


def test_tag_validation(harness_cli, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[[matrix]]\nmodels = ["lenet5"]\ndatasets = ["digits"]\nmethods = ["dense"]\n'
                     'backends = ["onnxruntime-cpu"]\nsuites = ["size"]\n')
    for tag, reason in (("latest", "reserved"), ("12", "must start with a letter")):
        out = harness_cli("run", suite, "--db", tmp_path / "t.db", "--tag", tag)
        assert out.returncode == 2 and f"tag {tag!r}" in out.stderr and reason in out.stderr
