"""The query benchmark's store and queries (``bench/generate.py``, ``bench/test_bench_queries.py``) at a
small size, so that the test run keeps them working; ``tox -e bench`` times them at full size."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from generate import generate, planted  # noqa: E402
from test_bench_queries import MODELS, expected_measurements  # noqa: E402

from harness.query.compare import compare_runs  # noqa: E402
from harness.query.leaderboard import frontier_of, leaderboard  # noqa: E402

ARTIFACTS = 40


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("generated") / "leaderboard.db"
    counts = generate(path, artifacts=ARTIFACTS, full_runs=12)
    assert counts == {"runs": 13, "cells": 5 * ARTIFACTS * 12 + 5 * ARTIFACTS // 2,
                      "measurements": expected_measurements(ARTIFACTS, 12.5), "sample_sets": 4 * ARTIFACTS * 12.5}
    return path


def test_filtered_leaderboard_ranks_one_model_on_one_backend(store):
    frame = leaderboard(store, machine="aaaa", model="model03", backend="onnxruntime-cpu", sort="p50_ms")
    # model03's dense artifact ranks; its sparsity-0.5 one fails the quality gate: shown, never ranked.
    assert len(frame) == ARTIFACTS // MODELS and frame["rank"].tolist()[0] == 1 and frame["rank"].isna().tolist() == [
        False, True]
    assert frame["flags"].iloc[1].startswith("quality gate") and set(frame["backend"]) == {"onnxruntime-cpu"}


def test_pareto_considers_every_entry_and_counts_what_it_leaves_out(store, harness_cli):
    front = frontier_of(store, leaderboard(store, machine="aaaa"), "top1:max,p50_ms:min")
    assert front.considered == 2 * ARTIFACTS and 0 < len(front.rows) < 2 * ARTIFACTS
    flagged = front.left_out["flagged (quality gate)"]
    assert flagged > 0 and sum(front.left_out.values()) == flagged
    out = harness_cli("leaderboard", "--db", store, "--machine", "aaaa", "--pareto", "top1:max,p50_ms:min")
    assert out.returncode == 0, out.stderr
    # One line with the reasons counted, never one line per excluded entry.
    assert out.stderr.strip().splitlines() == [front.summary()]
    assert f"left out: {flagged} flagged (quality gate)" in out.stderr


def test_compare_finds_the_planted_regressions(store):
    result = compare_runs(store, "11", "12")
    assert result.rows["cell_key"].nunique() == 5 * ARTIFACTS
    regressed = result.rows[result.rows["verdict"] == "regression"]
    assert set(zip(regressed["model"], regressed["backend"])) == {
        (f"model{a % MODELS:02d}", backend) for a, backend in planted(ARTIFACTS)}
