"""The flag mechanism end to end: a plugin suite flags a measurement, the worker passes it through,
the store keeps it, and the leaderboard shows the row flagged and unranked."""

import json
import sqlite3

GATED_SUITE = '''
from harness.api import Measurement, MetricSpec, SuiteSpec, hookimpl


def run(ctx):
    bad = ctx.cell["method"] != "dense"
    return [Measurement("claim_ok", 0.0 if bad else 1.0, "bool",
                        flag="soundness: claimed sparsity 0.5, measured 0.1" if bad else None)]


def run_malformed(ctx):
    return [Measurement("claim_ok", 1.0, "bool", flag="  ")]


@hookimpl
def harness_register_suites(register):
    register(SuiteSpec(name="gated", run=run, per_backend=False,
                       metrics=(MetricSpec("claim_ok", "bool", True, "claims hold"),)))
    register(SuiteSpec(name="malformed", run=run_malformed, per_backend=False,
                       metrics=(MetricSpec("claim_ok", "bool", True, "claims hold"),)))
'''

SUITE = """
name = "flags"
[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 64 }]
methods = ["dense", { name = "random", sparsity = 0.5 }]
backends = ["onnxruntime-cpu"]
suites = ["gated", "size"]
"""


def test_a_plugin_suite_flags_a_row_through_the_worker(harness_cli, plugin_dir, suite_file, tmp_path):
    plugin_dir.write("gated", GATED_SUITE)
    db = tmp_path / "f.db"
    out = harness_cli("--plugins-dir", plugin_dir.path, "run", suite_file(SUITE), "--db", db, "-q")
    assert out.returncode == 0, out.stderr
    conn = sqlite3.connect(db)
    flags = conn.execute("SELECT c.method, m.flag FROM measurements m JOIN cells c ON c.id = m.cell_id "
                         "WHERE m.metric = 'claim_ok' ORDER BY c.method").fetchall()
    conn.close()
    assert flags == [("dense", None), ("random", "soundness: claimed sparsity 0.5, measured 0.1")]
    board = json.loads(harness_cli("leaderboard", "--db", db, "--sort", "total_params", "--format", "json").stdout)
    by_method = {r["method"]: r for r in board}
    assert by_method["random"]["flags"] == "soundness: claimed sparsity 0.5, measured 0.1"
    assert by_method["random"]["rank"] is None and by_method["dense"]["rank"] == 1


def test_a_blank_flag_is_a_failed_cell_naming_the_suite(harness_cli, plugin_dir, suite_file, tmp_path):
    plugin_dir.write("gated", GATED_SUITE)
    db = tmp_path / "m.db"
    out = harness_cli("--plugins-dir", plugin_dir.path, "run", suite_file(SUITE.replace('"gated"', '"malformed"')),
                      "--db", db, "-q")
    assert out.returncode == 1
    conn = sqlite3.connect(db)
    reasons = [r[0] for r in conn.execute("SELECT reason FROM cells WHERE suite = 'malformed'")]
    conn.close()
    assert reasons and all("suite malformed of plugin" in r and "gated.py" in r
                           and "flag of claim_ok must be a non-empty reason string" in r for r in reasons)
