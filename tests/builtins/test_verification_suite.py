"""Verifier soundness end to end through the real CLI: a generated benchmark with hidden
counterexamples, the built-in verifiers, the deliberately unsound canary and a competition tool
plugged in by its folder, scored into the leaderboard; and certified robustness of compressed models."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest
from vnncomp_sample import SAMPLE

BENCH = '{ name = "soundnessbench", arch = "mlp", planted = 2, clean = 2, epochs = 800, eval_restarts = 100 }'

SUITE = f"""
name = "verifiers"
seeds = [0]

[[verification]]
benchmarks = [{BENCH}]
methods = ["dense", {{ name = "global-magnitude", sparsity = 0.5 }}]
verifiers = ["ibp", "crown", "milp", {{ name = "pgd", restarts = 10, steps = 30 }}, "unsound-pgd",
             {{ name = "vnncomp", tool = "sampler" }}]

[settings.verification]
timeout_s = 60
"""


def measurements(db) -> dict:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT method, backend, metric, params, value, flag FROM results WHERE suite = 'verification'")
    out: dict = {}
    for method, backend, metric, params, value, flag in rows:
        kind = json.loads(params).get("instances")
        out.setdefault((method, backend), {})[metric + (f"@{kind}" if kind else "")] = value
        if flag:
            out[(method, backend)]["flag"] = flag
    conn.close()
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import os
    import subprocess

    tmp = tmp_path_factory.mktemp("verification")
    tool = tmp / "sampler"
    tool.mkdir()
    (tool / "sample.py").write_text(SAMPLE)
    (tool / "run_instance.sh").write_text(f'#!/bin/bash\nexec {sys.executable} "$(dirname "$0")/sample.py" '
                                          '"$3" "$4" "$5" "$6"\n')
    suite = tmp / "verifiers.toml"
    suite.write_text(SUITE)
    db = tmp / "v.db"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp / "cache"))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=1800, cwd=tmp)

    proc = cli("run", suite, "--db", db, "-q")
    return proc, db, cli


@pytest.mark.slow
def test_every_verifier_cell_ran(run):
    proc, db, _ = run
    assert proc.returncode == 0, proc.stderr
    assert "12 cells recorded now (12 ok, 0 skipped, 0 failed)" in proc.stderr


@pytest.mark.slow
def test_the_unsound_canary_is_caught_and_flagged(run):
    _, db, _ = run
    m = measurements(db)[("dense", "unsound-pgd")]
    planted = sum(v for k, v in m.items() if k.endswith("@planted") and not k.startswith("unsound"))
    assert m["unsound"] == planted >= 1  # holds on every planted instance: a soundness bug, caught
    assert m["flag"].startswith("unsound: holds on")
    assert m["score"] == -150 * m["unsound"] + 10 * m["verified@clean"]


@pytest.mark.slow
def test_sound_verifiers_never_hold_on_a_planted_instance(run):
    _, db, _ = run
    m = measurements(db)
    for verifier in ("ibp", "crown", "milp", "pgd", "vnncomp"):
        row = m[("dense", verifier)]
        assert row["unsound"] == 0 and row["verified@planted"] == 0 and "flag" not in row, (verifier, row)
        assert row["invalid_witness"] == 0
    planted = m[("dense", "milp")]
    # The complete verifier finds every hidden counterexample (with a witness that replays) ...
    assert planted["falsified@planted"] == sum(planted[f"{o}@planted"] for o in ("verified", "falsified", "unknown",
                                                                              "timeout"))
    # ... the attacks do not: that is what hidden means.
    assert m[("dense", "pgd")]["falsified@planted"] == 0 and m[("dense", "vnncomp")]["falsified@planted"] == 0
    assert m[("dense", "milp")]["score"] == 10 * (planted["falsified@planted"] + planted["verified@clean"]
                                                 + planted["falsified@clean"])


@pytest.mark.slow
def test_compressed_networks_replay_their_counterexamples_first(run):
    _, db, _ = run
    m = measurements(db)
    dense, pruned = m[("dense", "milp")], m[("global-magnitude", "milp")]
    removed = pruned["counterexamples_removed"]
    kept = sum(pruned.get(f"{o}@planted", 0) for o in ("verified", "falsified", "unknown", "timeout"))
    assert kept + removed == dense["falsified@planted"]
    assert pruned["unsound"] == 0  # nothing is counted as planted unless its counterexample replays there


@pytest.mark.slow
def test_leaderboard_ranks_verifiers_by_score_and_never_the_unsound_one(run):
    _, db, cli = run
    out = cli("leaderboard", "--db", db, "--method", "dense", "--sort", "score", "--format", "json")
    assert out.returncode == 0, out.stderr
    board = json.loads(out.stdout)
    assert {r["backend"] for r in board} == {"ibp", "crown", "milp", "pgd", "unsound-pgd", "vnncomp"}
    canary = next(r for r in board if r["backend"] == "unsound-pgd")
    assert canary["rank"] is None and canary["flags"].startswith("unsound")
    ranked = [r for r in board if r["rank"] is not None]
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert ranked[0]["backend"] == "milp" and board[-1]["backend"] == "unsound-pgd"
    assert all(r["model"].startswith("soundnessbench(") and r["dataset"] == "vnnlib" for r in board)


ROBUST = """
name = "robust"
seeds = [0]

[[matrix]]
models = [{ name = "mlp", hidden = 16 }]
datasets = ["digits"]
methods = ["dense", { name = "global-magnitude", sparsity = 0.5 }, "int8-dynamic"]
verifiers = ["crown", "milp"]
suites = ["robustness"]

[settings.robustness]
samples = 4
epsilon = 0.01
timeout_s = 60
"""


@pytest.mark.slow
def test_certified_robustness_of_compressed_models(harness_cli, suite_file, tmp_path):
    db = tmp_path / "r.db"
    proc = harness_cli("run", suite_file(ROBUST), "--db", db, "-q", timeout=1800)
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT method, backend, metric, value FROM results WHERE suite = 'robustness'").fetchall()
    skipped = conn.execute("SELECT method, backend, reason FROM cells WHERE status = 'skipped'").fetchall()
    conn.close()
    v = {(m, b, metric): value for m, b, metric, value in rows}
    for method in ("dense", "global-magnitude"):
        crown, milp = v[(method, "crown", "certified_accuracy")], v[(method, "milp", "certified_accuracy")]
        assert 0 <= crown <= milp <= 1  # the complete verifier certifies at least what the bounds do
        assert v[(method, "milp", "undecided_fraction")] == 0  # and decides every correctly classified sample
    for verifier in ("crown", "milp"):
        assert v[("global-magnitude", verifier, "certified_accuracy_delta")] == pytest.approx(
            v[("global-magnitude", verifier, "certified_accuracy")] - v[("dense", verifier, "certified_accuracy")])
    # int8-dynamic quantizes activations at run time: the built-in verifiers cannot read it, and say so.
    assert sorted((m, b) for m, b, _ in skipped) == [("int8-dynamic", "crown"), ("int8-dynamic", "milp")]
    assert all("unsupported network: operator DynamicQuantizeLinear" in r for _, _, r in skipped)
