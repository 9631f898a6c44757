"""Every method of the reference library through the real CLI in one small suite, then the studies report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

SUITE = """
name = "methods"
seeds = [0]

[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = [
    { name = "dense" },
    { name = "global-magnitude", sparsity = 0.9 },
    { name = "layer-magnitude", sparsity = 0.9 },
    { name = "random", sparsity = 0.9 },
    { name = "gradient", sparsity = 0.5 },
    { name = "wanda", sparsity = 0.5 },
    { name = "n-m", n = 2, m = 4 },
    { name = "block", sparsity = 0.5 },
    { name = "channel-l1", sparsity = 0.5 },
    { name = "lottery-ticket", sparsity = 0.5, rounds = 1, epochs = 1 },
    { pipeline = [{ name = "global-magnitude", sparsity = 0.75 }, { name = "finetune", epochs = 1 },
                  { name = "kbit", bits = 4 }] },
    { name = "kbit", bits = [2, 4, 8] },
    { name = "splitquant", bits = 2 },
    { name = "mixed-precision", bits = 4.0 },
    { name = "int8-static" },
    { name = "svd", energy = 0.9 },
]
backends = ["onnxruntime-cpu"]
suites = ["accuracy", "size"]
"""


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    """The suite above, run once through the CLI: (completed process, db, cli)."""
    import os
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("methods")
    suite = tmp / "methods.toml"
    suite.write_text(SUITE)
    db = tmp / "m.db"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp / "cache"))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=900)

    return cli("run", suite, "--db", db, "-q"), db, cli


def _size(db) -> dict:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT c.method, c.method_params, c.info, m.metric, m.value FROM measurements m "
                            "JOIN cells c ON c.id = m.cell_id WHERE c.suite = 'size'").fetchall()
    finally:
        conn.close()
    out: dict = {}
    for method, params, info, metric, value in rows:
        entry = out.setdefault((method, params), {"claims": json.loads(info)["artifact"]["claims"]})
        entry[metric] = value
    return out


@pytest.mark.slow
def test_every_method_runs_and_is_ranked(methods_run):
    proc, db, cli = methods_run
    assert proc.returncode == 0, proc.stderr
    assert "(36 ok, 0 skipped, 0 failed)" in proc.stderr  # 18 artifacts x (accuracy + size)
    board = json.loads(cli("leaderboard", "--db", db, "--format", "json").stdout)
    assert len(board) == 18 and all(0.0 < r["top1"] <= 1.0 for r in board)
    top1 = {(r["method"], r["method_params"]): r["top1"] for r in board}
    dense = top1[("dense", "")]
    assert top1[("kbit", "bits=8")] >= dense - 0.01
    assert top1[("int8-static", "calibration=minmax,per_channel=True")] >= dense - 0.01


@pytest.mark.slow
def test_claims_and_size_figures_are_recorded(methods_run):
    _, db, _ = methods_run
    size = _size(db)
    dense = size[("dense", "{}")]
    assert dense["bits_per_weight"] == 32 and dense["peak_memory_mb"] > 0
    k4 = size[("kbit", '{"bits": 4}')]
    assert k4["claims"]["weight_bits"] == 4 and k4["bits_per_weight"] == 4
    assert k4["packed_bytes"] < dense["packed_bytes"] / 4
    assert size[("splitquant", '{"bits": 2}')]["bits_per_weight"] == 4  # 2-bit codes + 2-bit cluster index
    assert size[("mixed-precision", '{"bits": 4.0}')]["bits_per_weight"] <= 4
    assert size[("int8-static", '{"calibration": "minmax", "per_channel": true}')]["bits_per_weight"] == 8
    nm = size[("n-m", '{"m": 4, "n": 2}')]
    assert nm["claims"]["n_m"] == "2:4"
    structured = size[("channel-l1", '{"sparsity": 0.5}')]
    assert structured["total_params"] < dense["total_params"] / 2 and structured["theoretical_speedup"] > 2
    assert structured["peak_memory_mb"] < dense["peak_memory_mb"]
    svd = size[("svd", '{"energy": 0.9, "rank": 0}')]
    assert svd["total_params"] < dense["total_params"] and svd["claims"]["retained_energy"] == 0.9
    pipe = next(v for (m, _), v in size.items() if m == "global-magnitude+finetune+kbit")
    assert pipe["claims"]["sparsity"] == 0.75 and pipe["claims"]["weight_bits"] == 4
    assert pipe["weight_sparsity"] >= 0.745 and pipe["bits_per_weight"] == 4
    for (method, _), entry in size.items():
        if method in ("gradient", "wanda", "block", "lottery-ticket"):
            assert entry["weight_sparsity"] == pytest.approx(entry["claims"]["sparsity"], abs=0.005)


@pytest.mark.slow
def test_studies_report_on_the_run(methods_run, tmp_path):
    _, db, cli = methods_run
    out = tmp_path / "studies.md"
    suites = Path(__file__).resolve().parents[2] / "suites"  # the studies' findings, beside their suite files
    proc = cli("studies", "--db", db, "-o", out, "--findings", suites / "pruning-study.findings.toml",
               "--findings", suites / "quantization-study.findings.toml")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    # One seed, one model: each finding the suite measured gets a verdict computed from its values.
    verdicts = [line for line in text.splitlines() if line.startswith("Verdict:")]
    assert len(verdicts) == 6
    eight_bit = next(line for line in text.splitlines() if line.startswith("| 8-bit quantization keeps"))
    assert "reproduced" in eight_bit and "not measured" not in eight_bit  # measured: a verdict either way
    assert "Structured pruning gives real latency gains on onnxruntime-cpu; unstructured pruning gives none. | " \
           "**not measured**" in text  # no latency suite in this run
