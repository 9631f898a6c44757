"""harness compare: significance on raw samples, threshold, noise floor, machines, run references."""

import json

import pytest
from synthetic import MACHINE_A, MACHINE_B, accuracy, identity, latency, new_run, open_store, record, size

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
    # The unit of variation is the run: the five earlier nights, not the raw samples.
    assert rows["p50_ms@b1"]["test"] == "history-t (5 runs)" and rows["p50_ms@b1"]["q_value"] < 1e-3
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


def test_two_runs_drifting_apart_are_not_a_regression_without_a_noise_estimate(tmp_path, harness_cli):
    # The case: two runs, thousands of tight samples each, 6% apart. A test on raw samples calls
    # that significant (p ~ 0); with one run on each side nothing says whether 6% is the machine's drift.
    store = open_store(tmp_path / "two.db")
    for ms, seed in ((1.0, 1), (1.06, 2)):
        run = new_run(store, tag="nightly")
        record(store, run, FAST, latency(ms, n=3000, cv=0.02, seed=seed))
    store.close()
    result = compare_runs(tmp_path / "two.db", "previous", "latest")
    rows = by_metric(result)
    assert rows["p50_ms@b1"]["verdict"] == "untested" and rows["p50_ms@b1"]["test"] == "untested"
    assert result.exit_code == 0 and result.count("regression") == 0
    assert "untested: no noise estimate between runs" in result.summary()
    out = harness_cli("compare", "previous", "latest", "--db", tmp_path / "two.db")
    assert out.returncode == 0 and "untested" in out.stdout and "untested" in out.stderr


def test_per_process_values_are_the_unit_when_runs_have_processes(tmp_path):
    store = open_store(tmp_path / "p.db")
    for ms, seed in ((1.0, 1), (1.25, 2)):  # no history, but five processes per run
        run = new_run(store, tag="nightly")
        record(store, run, FAST, latency(ms, n=500, seed=seed, processes=5))
    store.close()
    row = by_metric(compare_runs(tmp_path / "p.db", "previous", "latest"))["p50_ms@b1"]
    assert row["test"] == "welch-t (5+5 processes)" and row["verdict"] == "regression" and row["q_value"] < 0.01


def test_dispersion_metrics_are_reported_but_never_regressions(tmp_path):
    store = open_store(tmp_path / "d.db")
    for i in range(5):
        record(store, new_run(store, tag="nightly"), FAST, latency(1.0, seed=i, stdev=True))
    # Same median, ten times the spread: stdev +900%, never a regression by default.
    wider = [dict(m, value=m["value"] * 10) if m["metric"] == "stdev_ms" else m
             for m in latency(1.0, seed=9, stdev=True)]
    record(store, new_run(store, tag="nightly"), FAST, wider)
    store.close()
    result = compare_runs(tmp_path / "d.db", "previous", "latest")
    row = by_metric(result)["stdev_ms@b1"]
    assert row["change"] > 5 and row["verdict"] == "ok" and row["test"] == "dispersion"
    assert "never a regression" in row["why"] and result.exit_code == 0
    tested = by_metric(compare_runs(tmp_path / "d.db", "previous", "latest", test_dispersion=True))["stdev_ms@b1"]
    assert tested["test"].startswith("history-t") and tested["verdict"] == "regression"


def test_unstable_measurements_are_discounted_and_the_output_says_so(db, harness_cli):
    path, store = db
    run = new_run(store, tag="nightly")
    record(store, run, FAST, latency(1.2, cv=0.62, seed=77))  # 20% slower, but CV 62%
    result = compare_runs(path, "previous", "latest", metrics=["p50_ms"])
    row = by_metric(result)["p50_ms@b1"]
    assert row["change"] > 0.1 and row["q_value"] < 0.01  # significant against history...
    assert row["verdict"] == "unstable" and "unstable: CV" in row["why"] and "in the new run" in row["why"]
    assert "widened by the medians' 95% intervals" in row["why"]  # ...but within the new median's own interval
    assert result.exit_code == 0 and "discounted as unstable" in result.summary()
    kept = by_metric(compare_runs(path, "previous", "latest", metrics=["p50_ms"], keep_unstable=True))
    assert kept["p50_ms@b1"]["verdict"] == "regression"
    out = harness_cli("compare", "previous", "latest", "--db", path, "--metric", "p50_ms")
    assert out.returncode == 0 and "unstable" in out.stdout and "discounted as unstable" in out.stderr
    # A change beyond the widened threshold still counts, and says the measurement was unstable.
    record(store, new_run(store, tag="nightly"), FAST, latency(2.5, cv=0.62, seed=78))
    slow = by_metric(compare_runs(path, "5", "latest", metrics=["p50_ms"]))["p50_ms@b1"]
    assert slow["verdict"] == "regression" and "unstable" in slow["why"]


def test_a_cell_that_failed_in_the_base_run_is_compared_with_its_last_success(db, harness_cli):
    path, store = db
    failed = new_run(store, tag="nightly")  # run 6: dense failed, the other cell ran
    record(store, failed, FAST, [], status="failed")
    record(store, failed, OTHER, latency(2.0, seed=600))
    nightly(store, 700, fast_ms=1.25)  # run 7: dense back, and 25% slower than its last success (run 5)
    result = compare_runs(path, "previous", "latest")
    assert result.base["id"] == failed
    rows = by_metric(result)
    assert rows["p50_ms@b1"]["base_run"] == 5 and rows["p50_ms@b1"]["verdict"] == "regression"
    assert by_metric(result, "global-magnitude")["p50_ms@b1"]["base_run"] == failed
    assert result.fallback == {5: 3}  # dense failed; accuracy and size were not in run 6 at all
    assert "3 cells failed or missing in run 6: compared against run 5, the last run where they succeeded" in \
        result.summary()
    assert "only in the new run" not in result.summary() and result.only_new == 0
    out = harness_cli("compare", "previous", "latest", "--db", path)
    assert out.returncode == 1 and "compared against run 5" in out.stderr


def test_the_noise_between_runs_learned_from_history_absorbs_a_noisy_cell(tmp_path):
    store = open_store(tmp_path / "n.db")
    # A cell whose median swings about 10% from night to night, with tight samples each night.
    for i, ms in enumerate([1.0, 1.12, 0.97, 1.1, 1.08, 0.95]):
        nightly(store, i, fast_ms=ms)
    nightly(store, 50, fast_ms=1.1)  # +16% against the last night, but this cell's usual swing
    result = compare_runs(tmp_path / "n.db", "previous", "latest")
    row = by_metric(result)["p50_ms@b1"]
    assert row["change"] > 0.05 and row["test"] == "history-t (6 runs)"
    assert row["verdict"] == "ok" and "not significant against the noise between runs" in row["why"]
    # Without history there is nothing to test against: untested, never a regression.
    assert by_metric(compare_runs(tmp_path / "n.db", "previous", "latest", history=0))["p50_ms@b1"]["verdict"] == \
        "untested"
    store.close()


def test_previous_is_the_previous_run_on_the_same_machine(tmp_path, harness_cli):
    store = open_store(tmp_path / "m.db")
    for i in range(3):  # nights alternate between two benchmark machines writing to one store
        nightly(store, 10 + i, machine=MACHINE_A)
        nightly(store, 20 + i, machine=MACHINE_B)
    nightly(store, 30, machine=MACHINE_A)  # run 7, on A; run 6 was B's
    result = compare_runs(tmp_path / "m.db", "previous", "latest")
    assert (result.base["id"], result.new["id"]) == (5, 7) and not result.forced_across_machines
    out = harness_cli("compare", "previous", "latest", "--db", tmp_path / "m.db")
    assert out.returncode == 0, out.stderr
    assert "run 5 (base) with run 7 (new)" in out.stderr
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
    with pytest.raises(QueryError, match="no run of suite 'synthetic' without a tag on machine aaaa1111"):
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


def loaded_night(store, centre_ms, busy, seed):
    """A night on a shared machine: a share ``busy`` of the calls delayed by other load (the slow mode),
    summarized by the latency suite's own statistics."""
    import numpy as np

    from harness.measure.timing import summarize

    rng = np.random.default_rng(seed)
    n = 4000
    slow = rng.random(n) < busy
    s = centre_ms * np.where(slow, 1.6 * rng.lognormal(0.0, 0.1, n), rng.lognormal(0.0, 0.01, n))
    stats = summarize(s / 1e3)
    params = {"batch_size": 1}
    run = new_run(store, tag="nightly")
    record(store, run, FAST, [
        {"metric": "p50_ms", "value": stats["median_ms"], "unit": "ms", "params": params, "stats": stats,
         "samples": [float(v) for v in s], "samples_name": "p50_ms@batch_size=1"},
        {"metric": "p10_ms", "value": stats["p10_ms"], "unit": "ms", "params": params, "stats": stats}])
    return run


def test_on_a_busy_machine_the_load_moves_the_median_and_p10_finds_the_slowdown(tmp_path):
    store = open_store(tmp_path / "busy.db")
    for i, busy in enumerate([0.6, 0.3, 0.55, 0.35, 0.6, 0.3]):  # the median jumps between the two modes
        loaded_night(store, 1.0, busy, seed=i)
    loaded_night(store, 1.0, 0.6, seed=40)  # unchanged code, busier than the night before: p50 +50%
    rows = by_metric(compare_runs(tmp_path / "busy.db", "previous", "latest"))
    assert rows["p50_ms@b1"]["change"] > 0.3 and rows["p50_ms@b1"]["verdict"] in ("ok", "unstable")
    assert rows["p10_ms@b1"]["verdict"] == "ok"
    loaded_night(store, 1.1, 0.3, seed=41)  # 10% more work per call, a quieter night
    result = compare_runs(tmp_path / "busy.db", "previous", "latest")
    rows = by_metric(result)
    assert rows["p10_ms@b1"]["verdict"] == "regression" and rows["p10_ms@b1"]["test"].startswith("history-t")
    assert rows["p10_ms@b1"]["change"] == pytest.approx(0.10, abs=0.02)
    assert result.exit_code == 1
    store.close()


def cpu_night(store, cpu_ms, *, wall_ms=1.0, busy=0.3, seed=0, processes=1):
    """A night on a shared machine as the latency suite records it with CPU time: wall samples bimodal with
    the load (``busy`` of the calls delayed) around ``wall_ms``, whose fast mode also drifts with the
    machine's state, and the same calls' CPU time around ``cpu_ms``, which time spent descheduled leaves out."""
    import numpy as np

    from harness.measure.timing import summarize

    rng = np.random.default_rng(seed)
    n = 4000
    slow = rng.random(n) < busy
    wall = wall_ms * np.where(slow, 1.6 * rng.lognormal(0.0, 0.1, n), rng.lognormal(0.0, 0.01, n))
    cpu = cpu_ms * rng.lognormal(0.0, 0.03, n)
    stats = summarize(wall / 1e3)
    stats["cpu"] = summarize(cpu / 1e3)
    if processes > 1:
        stats["per_process"] = {"median_ms": [float(np.median(p)) for p in np.array_split(wall, processes)],
                                "cpu_median_ms": [float(np.median(p)) for p in np.array_split(cpu, processes)]}
    params = {"batch_size": 1}
    run = new_run(store, tag="nightly")
    record(store, run, FAST, [
        {"metric": "p50_ms", "value": stats["median_ms"], "unit": "ms", "params": params, "stats": stats,
         "samples": [float(v) for v in wall], "samples_name": "p50_ms@batch_size=1"},
        {"metric": "p10_ms", "value": stats["p10_ms"], "unit": "ms", "params": params, "stats": stats},
        {"metric": "cpu_ms", "value": stats["cpu"]["median_ms"], "unit": "ms", "params": params, "stats": stats}])
    return run


def test_cpu_time_finds_a_slowdown_the_wall_clock_loses_in_the_load(tmp_path):
    store = open_store(tmp_path / "cpu.db")
    # Unchanged nights: the load moves the median, the machine's state the fast mode (p10) by up to 15%.
    for i, (wall, busy) in enumerate([(1.0, 0.6), (1.15, 0.3), (0.9, 0.55), (1.1, 0.35), (0.92, 0.6), (1.12, 0.3)]):
        cpu_night(store, 0.8 * (1 + 0.01 * (i % 3 - 1)), wall_ms=wall, busy=busy, seed=i)
    cpu_night(store, 0.8, wall_ms=0.9, busy=0.5, seed=40)  # unchanged code on another night's machine
    result = compare_runs(tmp_path / "cpu.db", "previous", "latest")
    assert result.count("regression") == 0 and result.count("improvement") == 0
    # 10% more work per call on a night whose machine state hides it from p10 and whose load hides it
    # from the median: the calls' CPU time shows it, against its own run-to-run noise.
    cpu_night(store, 0.88, wall_ms=0.99, busy=0.5, seed=41)
    result = compare_runs(tmp_path / "cpu.db", "previous", "latest")
    rows = by_metric(result)
    assert rows["p10_ms@b1"]["verdict"] == "ok" and rows["p50_ms@b1"]["verdict"] != "regression"
    assert rows["cpu_ms@b1"]["verdict"] == "regression" and rows["cpu_ms@b1"]["test"] == "history-t (7 runs)"
    assert rows["cpu_ms@b1"]["change"] == pytest.approx(0.10, abs=0.02)
    # Judged by its own samples' spread: the wall samples' CV (unstable) and median interval are not its.
    assert "unstable" not in rows["cpu_ms@b1"]["why"]
    assert result.exit_code == 1
    store.close()


def test_cpu_time_of_several_processes_is_tested_per_process(tmp_path):
    store = open_store(tmp_path / "pp.db")
    cpu_night(store, 0.80, seed=1, processes=4)
    cpu_night(store, 0.88, seed=2, processes=4)  # no history: the processes are the unit of variation
    rows = by_metric(compare_runs(tmp_path / "pp.db", "previous", "latest"))
    assert rows["cpu_ms@b1"]["test"] == "welch-t (4+4 processes)" and rows["cpu_ms@b1"]["verdict"] == "regression"
    store.close()
def not_ok(records):
    """The records whose verdict is not ok, NaN as None (NaN equals nothing, itself included)."""
    return [{k: None if v != v else v for k, v in r.items()} for r in records if r["verdict"] != "ok"]


def test_without_every_row_the_changes_are_counted_in_sql_and_the_verdicts_are_the_same(db, harness_cli):
    path, store = db
    run = new_run(store, tag="nightly")  # run 6: dense 25% slower and unstable in part, accuracy lower
    record(store, run, FAST, latency(1.25, seed=42, stdev=True))
    record(store, run, OTHER, latency(2.0, cv=0.4, seed=43))
    record(store, run, ACC, accuracy(0.90, 0.96))
    for options in ({}, {"metrics": ["p50_ms", "top1"]}, {"history": 0}, {"threshold": 0.0}):
        every = compare_runs(path, "previous", "latest", **options)
        changes = compare_runs(path, "previous", "latest", every_row=False, **options)
        assert changes.summary() == every.summary() and changes.exit_code == every.exit_code
        assert not_ok(changes.listing()) == not_ok(every.listing())
        assert not_ok(changes.rows.to_dict("records")) == not_ok(every.rows.to_dict("records"))
        assert {v: changes.count(v) for v in ("ok", "regression", "unstable")} == \
            {v: every.count(v) for v in ("ok", "regression", "unstable")}
    # Threshold 0: the rows left out are those that did not change at all (the checks).
    assert every.count("regression") and changes.quiet == (every.rows["change"] == 0).sum() > 0
    assert compare_runs(path, "previous", "latest", every_row=False).quiet > 0
    with pytest.raises(ValueError, match="every_row"):
        compare_runs(path, "previous", "latest", every_row=False).listing(show_all=True)
    # The command line lists the same rows either way (--all adds the ok ones).
    listed = json.loads(harness_cli("compare", "previous", "latest", "--db", path, "--format", "json").stdout)
    every = json.loads(harness_cli("compare", "previous", "latest", "--db", path, "--format", "json", "--all").stdout)
    assert listed == [r for r in every if r["verdict"] != "ok"] and len(every) > len(listed) > 0


def test_nothing_to_list_still_prints_the_columns(db, harness_cli):
    path, store = db
    nightly(store, 123)
    out = harness_cli("compare", "previous", "latest", "--db", path, "--format", "csv")
    assert out.returncode == 0 and out.stdout.splitlines() == [
        "verdict,model,dataset,method,method_params,seed,backend,backend_params,metric,base_run,base,new,change,"
        "change_kind,test,p_value,q_value,flag,why"]
    assert harness_cli("compare", "previous", "latest", "--db", path, "--format", "json").stdout.strip() == "[]"
