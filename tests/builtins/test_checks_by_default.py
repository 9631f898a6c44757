"""The cheap checks run with every cell, whatever the suite file names: a suite file of only accuracy and
latency (the one ``harness new-plugin --kind backend`` writes) flags a backend whose timed call does not
compute, and never ranks it; the first-party backend beside it stays ranked, its checks named."""

from __future__ import annotations

import json
from pathlib import Path

NOWORK_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "nowork"

SUITE = """
name = "nowork"
seeds = [0]

[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = [{ name = "dense" }]
backends = ["stale", "constant", "identity-cache", "onnxruntime-cpu"]
suites = ["accuracy", "latency"]

[settings.latency]
batch_sizes = [1, 32]
profile = "smoke"
min_time_s = 0.05
min_samples = 5
"""


def test_a_backend_that_does_not_compute_is_flagged_and_unranked(harness_cli, suite_file, tmp_path):
    db = tmp_path / "nowork.db"
    proc = harness_cli("--plugins-dir", NOWORK_DIR, "run", suite_file(SUITE), "--db", db, "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    board = harness_cli("leaderboard", "--db", db, "--sort", "p90_ms", "--format", "json", "--columns", "all")
    assert board.returncode == 0, board.stderr
    rows = {r["backend"]: r for r in json.loads(board.stdout)}
    for backend in ("stale", "constant", "identity-cache"):
        row = rows[backend]
        assert row["rank"] is None, row
        assert "soundness: test01: outputs under timing differ from the reference on" in row["flags"]
        assert "the timed call does not run the model" in row["flags"]
        assert row["check_test01@b1"] == 0.0 and row["check_agreement"] == 1.0 and row["check_claims"] == 1.0
    honest = rows["onnxruntime-cpu"]
    assert honest["rank"] == 1 and not honest["flags"], honest
    assert honest["checks"] == "claims, test01@b1"
    assert honest["check_test01@b1"] == honest["check_test01@b32"] == 1.0
    by_top1 = {r["backend"]: r for r in json.loads(harness_cli("leaderboard", "--db", db, "--sort", "top1",
                                                               "--format", "json").stdout)}
    assert by_top1["onnxruntime-cpu"]["checks"] == "claims, agreement"
    assert by_top1["stale"]["rank"] is None  # a flagged row is ranked on nothing
