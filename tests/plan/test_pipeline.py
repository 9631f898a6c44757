"""Pipelines: methods composed in a suite file (prune, then quantize)."""

import json
import sqlite3

import pytest

from harness.plan.suitefile import SuiteFileError, plan_from_dict
from harness.plugin.manager import load_host


@pytest.fixture(scope="module")
def registry():
    return load_host().registry


def plan(registry, methods, backends=("onnxruntime-cpu",), suites=("size",)):
    return plan_from_dict({"name": "p", "matrix": [{"models": ["lenet5"], "datasets": ["digits"], "methods": methods,
                                                    "backends": list(backends), "suites": list(suites)}]},
                          registry, path="p.toml")


def test_pipeline_expands_step_grids(registry):
    p = plan(registry, [{"pipeline": [{"name": "global-magnitude", "sparsity": [0.5, 0.9]},
                                      {"name": "int8-dynamic", "per_channel": [False, True]}]}])
    methods = [c.method for c in p.cells]
    assert len(methods) == 4 and {m.name for m in methods} == {"global-magnitude+int8-dynamic"}
    combos = {(m.params["steps"][0]["params"]["sparsity"], m.params["steps"][1]["params"]["per_channel"])
              for m in methods}
    assert combos == {(0.5, False), (0.5, True), (0.9, False), (0.9, True)}


def test_pipeline_output_format_decides_skips(registry):
    p = plan(registry, [{"pipeline": [{"name": "layer-magnitude", "sparsity": 0.5}, "int8-dynamic"]}],
             backends=("torch-cpu", "onnxruntime-cpu"), suites=("accuracy",))
    skipped = {c.backend.name: c.skip_reason for c in p.cells if c.method.name != "dense"}
    assert skipped["onnxruntime-cpu"] is None
    assert "produces onnx" in skipped["torch-cpu"]


@pytest.mark.parametrize("steps, key, reason", [
    ([{"name": "dense"}], "matrix[0].methods[0].pipeline", "two or more"),
    (["dense", {"name": "nope"}], "matrix[0].methods[0].pipeline[1]", "unknown method 'nope'"),
    (["int8-dynamic", "dense"], "matrix[0].methods[0].pipeline[0]", "only the last step"),
    ([{"name": "random", "sparsity": 2.0}, "dense"], "matrix[0].methods[0].pipeline[0].sparsity", "out of range"),
])
def test_bad_pipelines_are_reported(registry, steps, key, reason):
    with pytest.raises(SuiteFileError) as info:
        plan(registry, [{"pipeline": steps}])
    assert any(k == key and reason in r for k, r in info.value.problems), info.value.problems


def test_pipeline_entry_takes_nothing_else(registry):
    with pytest.raises(SuiteFileError, match="takes only 'pipeline'"):
        plan(registry, [{"pipeline": ["dense", "int8-dynamic"], "name": "x"}])


@pytest.mark.slow
def test_prune_then_quantize_end_to_end(harness_cli, suite_file, tmp_path):
    suite = suite_file("""
name = "pipeline"
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = [{ pipeline = [{ name = "global-magnitude", sparsity = 0.75 }, { name = "int8-dynamic" }] }]
backends = ["onnxruntime-cpu"]
suites = ["accuracy", "size"]
""")
    db = tmp_path / "p.db"
    proc = harness_cli("run", suite, "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    info, plugins = conn.execute("SELECT info, plugins FROM cells WHERE suite = 'size'").fetchone()
    claims = json.loads(info)["artifact"]["claims"]
    assert claims["sparsity"] == 0.75 and claims["weight_bits"] == 8  # both steps' claims
    steps = json.loads(plugins)["method"]["steps"]
    assert [s["plugin"] for s in steps] == ["pruning", "quantization"]
    size = dict(conn.execute("SELECT m.metric, m.value FROM measurements m JOIN cells c ON c.id = m.cell_id "
                             "WHERE c.suite = 'size'").fetchall())
    assert size["weight_sparsity"] == pytest.approx(0.75, abs=0.01)  # zeros survive int8 quantization
    assert size["theoretical_speedup"] > 2
    board = json.loads(harness_cli("leaderboard", "--db", db, "--format", "json").stdout)
    row = next(r for r in board if r["method"] == "global-magnitude+int8-dynamic")
    assert row["method_params"].startswith("global-magnitude(sparsity=0.75) + int8-dynamic(")
    assert 0.5 < row["top1"] <= 1.0
