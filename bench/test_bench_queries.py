"""Query speed on a generated leaderboard of 1,350,000 measurements (``bench/generate.py``).

Targets (issue 18, through the CLI: ``bench/scale_cli.py``): a filtered leaderboard under 0.3 s, a Pareto
frontier of 4,000 entries under 0.5 s, a comparison of two runs of 10,000 cells each under 1.5 s. Here
the same queries are timed warm through the API (imports done), as a long-lived reader would run them.
The database is generated once per session, outside the timed part. ``HARNESS_BENCH_ARTIFACTS`` sets the
size (2,000 artifacts by default; the test run checks the same queries at 40 in
``tests/query/test_generated_store.py``).
"""

import os

import pytest
from generate import generate, planted

from harness.builtins.suites.size import METRICS as SIZE_METRICS
from harness.query.compare import compare_runs
from harness.query.leaderboard import frontier_of, leaderboard

ARTIFACTS = int(os.environ.get("HARNESS_BENCH_ARTIFACTS", "2000"))
MODELS = 20  # generate.py spreads the artifacts over 20 models


def expected_measurements(artifacts: int, runs: float) -> int:
    """Per artifact: a size cell with every size metric, accuracy (3) and latency (6 at 2 batch sizes) on
    two backends, each cell with its checks (claims; agreement; test01 per batch size)."""
    per_artifact = len(SIZE_METRICS) + 1 + 2 * (3 + 2 + (6 + 1) * 2 + 1)
    return int(artifacts * per_artifact * runs)


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("generated") / "leaderboard.db"
    counts = generate(path, artifacts=ARTIFACTS)
    assert counts["measurements"] == expected_measurements(ARTIFACTS, 12.5)
    leaderboard(path, machine="aaaa", model="model00")  # imports and page cache, as a warm reader
    return path


def test_filtered_leaderboard(benchmark, store):
    frame = benchmark.pedantic(leaderboard, args=(store,),
                               kwargs={"machine": "aaaa", "model": "model03", "backend": "onnxruntime-cpu",
                                       "sort": "p50_ms"}, rounds=10, warmup_rounds=1)
    assert len(frame) == ARTIFACTS // MODELS and frame["rank"].iloc[0] == 1


def test_pareto_frontier(benchmark, store):
    def pareto():
        return frontier_of(store, leaderboard(store, machine="aaaa"), "top1:max,p50_ms:min")

    front = benchmark.pedantic(pareto, rounds=5, warmup_rounds=1)
    assert front.considered == 2 * ARTIFACTS and 0 < len(front.rows) < 100 and front.left_out


def test_compare_two_runs_of_ten_thousand_cells(benchmark, store):
    result = benchmark.pedantic(compare_runs, args=(store, "11", "12"), rounds=3, warmup_rounds=1)
    assert result.rows["cell_key"].nunique() == 5 * ARTIFACTS
    regressed = result.rows[result.rows["verdict"] == "regression"]
    assert regressed["cell_key"].nunique() == len(planted(ARTIFACTS))


def test_compare_two_runs_as_the_command_line_does(benchmark, store):
    """Without ``--all``: the pairs within the threshold are counted in SQL, only the changes judged in Python."""
    result = benchmark.pedantic(compare_runs, args=(store, "11", "12"), kwargs={"every_row": False}, rounds=3,
                                warmup_rounds=1)
    assert result.cells == 5 * ARTIFACTS and result.quiet > 0.9 * result.metrics
    regressed = {r["model"] for r in result.listing() if r["verdict"] == "regression"}
    assert len(regressed) == len({a % MODELS for a, _ in planted(ARTIFACTS)})
