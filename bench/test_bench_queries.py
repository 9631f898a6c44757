"""Query speed on a generated leaderboard of one million measurements (``bench/generate.py``).

Targets (issue 7): a filtered leaderboard query under 200 ms, a Pareto query under 1 s, a comparison
of two runs of 10,000 cells each under 2 s. The database is generated once per session, outside
the timed part; each query is timed warm (imports done), as a long-lived reader would run it.
"""

import pytest
from generate import PLANTED, generate

from harness.builtins.suites.size import METRICS as SIZE_METRICS
from harness.query.compare import compare_runs
from harness.query.leaderboard import frontier_of, leaderboard


@pytest.fixture(scope="session")
def million(tmp_path_factory):
    path = tmp_path_factory.mktemp("million") / "leaderboard.db"
    counts = generate(path)
    # per artifact: a size cell with every size metric, accuracy (3) and latency (6 at 2 batch sizes) on
    # two backends, each cell with its checks (claims; agreement; test01 per batch size); 2,000 artifacts,
    # 12.5 runs
    per_artifact = len(SIZE_METRICS) + 1 + 2 * (3 + 2 + (6 + 1) * 2 + 1)
    assert counts["measurements"] == int(2000 * per_artifact * 12.5) >= 1_000_000
    leaderboard(path, machine="aaaa", model="model00")  # imports and page cache, as a warm reader
    return path


def test_filtered_leaderboard(benchmark, million):
    frame = benchmark.pedantic(leaderboard, args=(million,),
                               kwargs={"machine": "aaaa", "model": "model03", "backend": "onnxruntime-cpu",
                                       "sort": "p50_ms"}, rounds=10, warmup_rounds=1)
    assert len(frame) == 100 and frame["rank"].iloc[0] == 1


def test_pareto_frontier(benchmark, million):
    def pareto():
        return frontier_of(million, leaderboard(million, machine="aaaa"), "top1:max,p50_ms:min")

    front = benchmark.pedantic(pareto, rounds=5, warmup_rounds=1)
    assert front.considered == 4000 and 0 < len(front.rows) < 100 and front.left_out


def test_compare_two_runs_of_ten_thousand_cells(benchmark, million):
    result = benchmark.pedantic(compare_runs, args=(million, "11", "12"), rounds=3, warmup_rounds=1)
    assert result.rows["cell_key"].nunique() == 10_000
    regressed = result.rows[result.rows["verdict"] == "regression"]
    assert regressed["cell_key"].nunique() == len(PLANTED)
