"""The latency suite: multi-process timing, realized against theoretical speedup, recorded context."""

import json
import sqlite3

import pytest

from harness.api import STORED_SAMPLES

SUITE = """
name = "latency"
[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 32 }]
methods = [{ name = "random", sparsity = 0.75 }]
backends = ["onnxruntime-cpu"]
suites = ["latency"]
[settings.latency]
profile = "smoke"
batch_sizes = [1, 8]
min_time_s = 0.2
processes = PROCESSES
"""


def measurements(db):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT c.method, m.metric, m.value, m.params, m.info, m.stats, m.sample_set_id, s.n "
                        "FROM measurements m "
                        "JOIN cells c ON c.id = m.cell_id LEFT JOIN sample_sets s ON s.id = m.sample_set_id")
    return [dict(r) for r in rows]


@pytest.mark.parametrize("processes", [1, 2])
def test_latency_records_speedup_and_how_it_was_timed(harness_cli, suite_file, tmp_path, processes):
    db = tmp_path / "l.db"
    proc = harness_cli("run", suite_file(SUITE.replace("PROCESSES", str(processes))), "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    rows = measurements(db)
    by = {(r["method"], r["metric"], json.loads(r["params"]).get("batch_size")): r for r in rows}
    # The planner added the dense baseline; its speedup is 1 by definition.
    assert by[("dense", "speedup", 1)]["value"] == 1.0
    for bs in (1, 8):
        p50 = by[("random", "p50_ms", bs)]
        info = json.loads(p50["info"])
        assert info["processes"] == processes
        assert info["batch_size"] == bs and info["threads"] == 1 and info["distinct_inputs"] == 4
        assert info["scenario"] == ("single-stream" if bs == 1 else "offline")
        assert info["timer"] == "time.perf_counter_ns" and "warmup_stable" in info
        speedup = by[("random", "speedup", bs)]["value"]
        assert speedup == pytest.approx(by[("dense", "p50_ms", bs)]["value"] / p50["value"])
        theory = json.loads(by[("random", "speedup", bs)]["info"])["theoretical_speedup"]
        # every latency cell checks its timed call at each batch size (TEST01), whatever the suite file names
        check = by[("random", "check_test01", bs)]
        assert check["value"] == 1.0, check["info"]
        assert json.loads(check["info"])["source"] == "bound call, inputs changed in place"
        assert by[("random", "check_claims", None)]["value"] == 1.0
        assert theory > 2  # 75% of the weights are zero
        assert by[("random", "speedup_efficiency", bs)]["value"] == pytest.approx(speedup / theory)
        # CPU time beside wall time, over the same timed calls: the process's, summarized as the wall samples
        # are (median, its order-statistics interval), with no sample set of its own.
        cpu = by[("random", "cpu_ms", bs)]
        stats = json.loads(cpu["stats"])
        assert cpu["value"] > 0 and cpu["value"] == stats["cpu"]["median_ms"]
        # Over the same sampling phase: CPU samples span the fewest consecutive timed calls long enough for
        # the CPU clock (mlp's calls are a few microseconds), so there are at most as many.
        calls = info["cpu_calls_per_sample"]
        assert calls >= info["calls_per_sample"] and 0 < stats["cpu"]["n"] <= stats["n"]
        low, high = stats["cpu"]["ci95_median_ms"]
        assert low <= cpu["value"] <= high
        assert cpu["sample_set_id"] is None and stats == json.loads(p50["stats"])
        assert info["cpu_timer"] == "time.process_time_ns" and "cpu_time_absent" not in info
        if processes > 1:
            per_process = info["per_process"]
            assert len(per_process) == processes
            # The sample set stores at most STORED_SAMPLES of the processes' samples (evenly spaced).
            assert p50["n"] == min(sum(p["n"] for p in per_process), STORED_SAMPLES)
            assert len(stats["per_process"]["cpu_median_ms"]) == processes  # compare's welch-t uses them


LENET = """
name = "roofline"
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = [{ name = "dense" }]
backends = ["onnxruntime-cpu"]
suites = ["latency"]
[settings.latency]
profile = "smoke"
batch_sizes = [1, 8]
min_time_s = 0.2
SAMPLING
"""


def test_lenet5_is_timed_per_query_within_the_machines_peak(harness_cli, suite_file, tmp_path):
    db = tmp_path / "r.db"
    proc = harness_cli("run", suite_file(LENET.replace("SAMPLING", "")), "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    rows = measurements(db)
    # Every measurement at a batch size (check_claims, of the artifact, has none).
    by = {(r["metric"], json.loads(r["params"])["batch_size"]): r for r in rows if "batch_size" in r["params"]}
    for bs in (1, 8):
        info = json.loads(by[("p90_ms", bs)]["info"])
        # lenet5 takes microseconds, far above 20x the clock's resolution: every call timed by itself.
        assert info["sampling"] == "per query" and info["inner_loops"] == 1 and info["tails"] == "per query"
        assert info["timer_overhead_s"] >= 0 and info["per_query_threshold_s"] > 0
        fraction = by[("roofline_fraction", bs)]["value"]
        assert 0 < fraction <= 1
        roof = json.loads(by[("roofline_fraction", bs)]["info"])["roofline"]
        assert roof["flag"] is None and roof["peak"]["threads"] == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM measurements WHERE flag IS NOT NULL").fetchone()[0] == 0


def test_block_means_flag_their_tails_as_block_percentiles(harness_cli, suite_file, tmp_path):
    db = tmp_path / "b.db"
    suite = LENET.replace("SAMPLING", 'sampling = "block"').replace("batch_sizes = [1, 8]", "batch_sizes = [1]")
    proc = harness_cli("run", suite_file(suite), "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    flags = dict(conn.execute("SELECT metric, flag FROM measurements"))
    assert flags["p90_ms"].startswith("latency only: block percentiles: samples are block means of ")
    assert flags["p99_ms"] == flags["p90_ms"] and flags["p50_ms"] is None
    info = json.loads(conn.execute("SELECT info FROM measurements WHERE metric = 'p90_ms'").fetchone()[0])
    assert info["tails"] == "block percentiles" and info["samples"].startswith("block means of ")


def test_merged_processes_report_block_means_if_any_process_took_them():
    from harness.api import TimingResult
    from harness.builtins.suites.latency import merge

    per_query = TimingResult(samples_s=[1e-5] * 3, inner_loops=1, warmup_iters=5, timer="t", info={})
    blocks = TimingResult(samples_s=[1e-6] * 3, inner_loops=64, warmup_iters=5, timer="t", info={})
    assert merge([per_query, blocks]).inner_loops == 64
    assert merge([per_query, per_query]).inner_loops == 1


def test_merged_processes_have_cpu_time_only_if_every_process_measured_it():
    from harness.api import TimingResult
    from harness.builtins.suites.latency import merge

    def timed(cpu, **info):
        return TimingResult(samples_s=[1e-5] * 3, inner_loops=1, warmup_iters=5, timer="t", info=info,
                            cpu_samples_s=cpu)

    both = merge([timed([9e-6] * 3), timed([8e-6] * 3)])
    assert both.cpu_samples_s == [9e-6] * 3 + [8e-6] * 3 and "cpu_time_absent" not in both.info
    one = merge([timed([9e-6] * 3), timed(None, cpu_time_absent="CUDA: the model runs on the GPU")])
    assert one.cpu_samples_s is None
    assert one.info["cpu_time_absent"] == "process 2 of 2: CUDA: the model runs on the GPU"
    # A third-party session that says nothing: the reason names its timer and the field it left empty.
    quiet = merge([timed([9e-6] * 3), timed([])])
    assert quiet.cpu_samples_s is None and quiet.info["cpu_time_absent"] == (
        "process 2 of 2: the backend's session (t) measured no process CPU time (TimingResult.cpu_samples_s)")
