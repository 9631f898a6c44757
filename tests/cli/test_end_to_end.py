"""suites/smoke.toml end to end through the real CLI, then every query on its leaderboard."""

import hashlib
import json
import sqlite3
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "suites" / "smoke.toml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run the smoke suite once for this module: (completed process, db path, cli runner)."""
    import os
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("smoke")
    db = tmp / "leaderboard.db"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp / "cache"), COLUMNS="200")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=900)

    proc = cli("run", SMOKE, "--db", db)
    return proc, db, cli


def rows(db, sql, params=()):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_smoke_run_succeeds_and_prints_the_leaderboard(smoke):
    proc, db, _ = smoke
    assert proc.returncode == 0, proc.stderr
    assert "20 cells recorded now (18 ok, 2 skipped, 0 failed)" in proc.stderr
    assert "global-magnitude" in proc.stdout and "onnxruntime-cpu" in proc.stdout


def test_incompatible_combination_is_an_explicit_skip(smoke):
    _, db, _ = smoke
    skipped = rows(db, "SELECT * FROM cells WHERE status = 'skipped'")
    assert {(r["method"], r["backend"], r["suite"]) for r in skipped} == {
        ("int8-dynamic", "torch-cpu", "accuracy"), ("int8-dynamic", "torch-cpu", "latency")}
    assert all("int8-dynamic produces onnx" in r["reason"] for r in skipped)


def test_provenance_is_recorded(smoke):
    _, db, _ = smoke
    run = rows(db, "SELECT * FROM runs")[0]
    assert run["suite_sha256"] == hashlib.sha256(SMOKE.read_bytes()).hexdigest()
    assert run["status"] == "complete" and run["finished_at"]
    plugins = json.loads(run["plugins"])
    assert plugins["pruning"]["distribution"] == "harness-plugins"
    assert json.loads(run["machine"])["hash"] == run["machine_hash"]
    cell = rows(db, "SELECT plugins, info FROM cells WHERE method = 'global-magnitude' LIMIT 1")[0]
    assert json.loads(cell["plugins"])["method"]["plugin"] == "pruning"


def test_results_records_have_the_documented_shape(smoke):
    _, db, cli = smoke
    out = cli("results", "--db", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    keys = {"run_id", "model", "model_params", "dataset", "dataset_params", "method", "method_params", "seed",
            "backend", "backend_params", "suite", "metric", "measure_params", "value", "unit", "flag"}
    assert all(keys == set(r) for r in records)
    lat = [r for r in records if r["metric"] == "p50_ms"]
    assert {r["measure_params"]["batch_size"] for r in lat} == {1, 32}
    assert all(r["seed"] == 0 for r in records)
    sparsities = {r["method_params"].get("sparsity") for r in records if r["method"] == "global-magnitude"}
    assert sparsities == {0.5, 0.9}
    csv = cli("results", "--db", db, "--format", "csv")
    assert csv.returncode == 0 and csv.stdout.splitlines()[0].startswith("run_id,model,model_params,dataset,")


def test_latency_statistics_come_from_the_stored_raw_samples(smoke):
    _, db, _ = smoke
    ms = rows(db, "SELECT m.value, m.stats, m.info, s.samples, s.n FROM measurements m "
                  "JOIN sample_sets s ON s.id = m.sample_set_id WHERE m.metric = 'p50_ms'")
    assert len(ms) == 7 * 2  # 7 runnable (method, backend) pairs x 2 batch sizes
    for m in ms:
        samples = json.loads(m["samples"])
        assert len(samples) == m["n"] >= 30
        assert m["value"] == pytest.approx(statistics.median(samples), rel=1e-9)
        info = json.loads(m["info"])
        assert info["threads"] == 1 and info["timer"] and info["batch_size"] in (1, 32)
        stats = json.loads(m["stats"])
        assert stats["ci95_median_ms"][0] <= m["value"] <= stats["ci95_median_ms"][1]


def test_accuracy_deltas_are_against_dense_on_the_same_backend(smoke):
    _, db, _ = smoke
    acc = rows(db, "SELECT method, method_params, backend, metric, value FROM results WHERE suite = 'accuracy'")
    top1 = {(r["method"], r["method_params"], r["backend"]): r["value"] for r in acc if r["metric"] == "top1"}
    dense = {b: v for (m, _, b), v in top1.items() if m == "dense"}
    assert dense["torch-cpu"] == dense["onnxruntime-cpu"] > 0.9
    for r in acc:
        if r["metric"] == "top1_delta":
            own = top1[(r["method"], r["method_params"], r["backend"])]
            assert r["value"] == pytest.approx(own - dense[r["backend"]])


def test_size_figures_match_the_artifact(smoke):
    import torch

    _, db, _ = smoke
    size = rows(db, "SELECT c.method, c.method_params, c.info, m.metric, m.value FROM measurements m "
                    "JOIN cells c ON c.id = m.cell_id WHERE c.suite = 'size'")
    by = {}
    for r in size:
        by.setdefault((r["method"], r["method_params"]), {})[r["metric"]] = r["value"]
    g90 = by[("global-magnitude", '{"sparsity": 0.9}')]
    dense = by[("dense", "{}")]
    assert g90["total_params"] == dense["total_params"]
    assert g90["theoretical_speedup"] == pytest.approx(g90["flops"] / g90["nonzero_flops"])
    assert g90["theoretical_speedup"] > 2 and dense["theoretical_speedup"] == 1
    assert by[("int8-dynamic", '{"per_channel": false, "reduce_range": false}')]["onnx_bytes"] < dense["onnx_bytes"]
    # Independent count from the artifact on disk.
    cache = Path(db).parent / "cache" / "artifacts"
    key = rows(db, "SELECT artifact_key FROM cells WHERE suite='size' AND method_params = ?",
               ('{"sparsity": 0.9}',))[0]["artifact_key"]
    module = torch.load(cache / key / "module.pt", weights_only=False)
    weights = [m.weight for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros / sum(w.numel() for w in weights) == pytest.approx(0.9, abs=0.005)
    assert g90["total_params"] - g90["nonzero_params"] == zeros


def test_leaderboard_queries(smoke):
    _, db, cli = smoke
    out = cli("leaderboard", "--db", db, "--format", "json", "--sort", "top1")
    assert out.returncode == 0, out.stderr
    board = json.loads(out.stdout)
    assert len(board) == 7  # (4 methods x 2 backends) - int8 on torch
    top1 = [r["top1"] for r in board]
    assert top1 == sorted(top1, reverse=True)
    assert all(r["sparsity"] is not None for r in board)  # size merged into every backend's row
    fast = json.loads(cli("leaderboard", "--db", db, "--format", "json", "--sort", "p90_ms").stdout)
    ranked = [r for r in fast if r["rank"] is not None]
    p90 = [r["p90_ms@b1"] for r in ranked]
    assert p90 == sorted(p90) and [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert fast[len(ranked):] == [r for r in fast if r["flags"]]  # flagged rows after the ranked ones
    ort = json.loads(cli("leaderboard", "--db", db, "--format", "json", "--backend", "onnxruntime-cpu").stdout)
    assert {r["backend"] for r in ort} == {"onnxruntime-cpu"} and len(ort) == 4
    md = cli("leaderboard", "--db", db, "--format", "markdown")
    assert md.stdout.startswith("| model") and "global-magnitude" in md.stdout
    csv = cli("leaderboard", "--db", db, "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("model,dataset,method,method_params,seed,backend")
    bad = cli("leaderboard", "--db", db, "--sort", "nope")
    assert bad.returncode == 2 and "no column 'nope'" in bad.stderr


def test_queries_work_on_a_read_only_copy(smoke, tmp_path):
    _, db, cli = smoke
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(db).read_bytes())
    copy.chmod(0o444)
    before = copy.read_bytes()
    out = cli("leaderboard", "--db", copy, "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)
    assert copy.read_bytes() == before
    assert not Path(str(copy) + "-journal").exists()


def test_quality_gate_flags_real_results(smoke):
    _, db, cli = smoke
    flagged = rows(db, "SELECT method, method_params, backend, metric, value, flag FROM results "
                       "WHERE flag IS NOT NULL ORDER BY backend")
    assert {(r["method_params"], r["backend"]) for r in flagged} >= {
        ('{"sparsity": 0.9}', "torch-cpu"), ('{"sparsity": 0.9}', "onnxruntime-cpu")}
    for r in flagged:
        assert r["metric"] == "top1_retained" and r["value"] < 0.99
        assert r["flag"] == f"quality gate: top1 retained {r['value']:.4g} < 0.99"
    board = json.loads(cli("leaderboard", "--db", db, "--format", "json", "--sort", "top1").stdout)
    assert all(r["rank"] is None for r in board if r["flags"])
    front = cli("leaderboard", "--db", db, "--pareto", "top1:max,p50_ms:min", "--format", "json")
    assert front.returncode == 0 and "flagged (quality gate" in front.stderr
    assert not any(r["flags"] for r in json.loads(front.stdout))


@pytest.mark.slow
def test_nightly_rerun_compare_and_history(smoke):
    _, db, cli = smoke
    again = cli("run", SMOKE, "--db", db, "--no-resume", "--tag", "nightly", "-q")
    assert again.returncode == 0, again.stderr
    runs = rows(db, "SELECT id, tag FROM runs ORDER BY id")
    assert [r["tag"] for r in runs] == [None, "nightly"]
    out = cli("compare", "1", "latest", "--db", db, "--all", "--format", "json")
    assert out.returncode in (0, 1), out.stderr
    compared = json.loads(out.stdout)
    by_test = {}
    for r in compared:
        by_test.setdefault(r["test"], set()).add(r["metric"].split("@")[0])
    assert {"top1", "gzip_bytes", "total_params"} <= by_test["deterministic"]
    timing = set().union(*(m for t, m in by_test.items() if t in ("within threshold", "untested")))
    assert {"p50_ms", "p90_ms", "throughput_sps"} <= timing  # two runs: no noise estimate between runs
    assert "stdev_ms" in by_test["dispersion"]
    for r in compared:
        if r["test"] == "deterministic":
            assert r["change"] == 0 and r["verdict"] == "ok", r
    assert out.returncode == 0  # timing changes are untested with one run on each side, never regressions
    history = json.loads(cli("history", "--db", db, "--metric", "top1", "--method", "dense", "--backend",
                             "onnxruntime-cpu", "--format", "json").stdout)
    assert [h["run_id"] for h in history] == [1, 2] and history[0]["value"] == history[1]["value"]
