"""Size guards: a plan's cells counted before its grids expand and refused over the limit; parameters
bounded by the machine (``threads``) and by sense (batch sizes, repeats, timeouts)."""

from __future__ import annotations

import tracemalloc

import pytest

from harness.plan.size import CELL_LIMIT, PlanTooLarge, count_cells
from harness.plan.suitefile import SuiteFileError, plan_from_dict
from harness.plugin.manager import load_host
from harness.plugin.params import cpu_cores


@pytest.fixture(scope="module")
def registry():
    return load_host().registry


def million() -> dict:
    """10 seeds x 100 dataset sizes x 1,000 sparsities of one method, one suite: 1,000,000 cells."""
    return {"name": "big", "seeds": list(range(10)), "matrix": [{
        "models": ["mlp"], "datasets": [{"name": "synthetic", "n": list(range(8, 108))}],
        "methods": [{"name": "random", "sparsity": [round(0.0001 * i, 4) for i in range(1, 1001)]}],
        "suites": ["size"]}]}


def test_a_million_cell_plan_is_refused_before_it_is_expanded(registry):
    data = million()
    assert count_cells(data, registry) == 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(PlanTooLarge) as info:
            plan_from_dict(data, registry, path="big.toml", max_cells=CELL_LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # counted from the list lengths: no grid point, no cell was built
    assert info.value.cells == 1_000_000 and info.value.limit == CELL_LIMIT
    assert "big.toml: the plan has 1,000,000 cells" in str(info.value) and "--yes" in str(info.value)


@pytest.mark.parametrize("table", [
    {"models": ["mlp", "lenet5"], "datasets": ["digits"],
     "methods": ["dense", {"name": "random", "sparsity": [0.5, 0.9]}],
     "backends": ["torch-cpu", {"name": "onnxruntime-cpu", "threads": [1]}], "suites": ["size", "latency"]},
    {"models": ["mlp"], "datasets": ["digits"],
     "methods": ["dense", {"pipeline": [{"name": "random", "sparsity": [0.5, 0.9]}, {"name": "int8-dynamic"}]}],
     "backends": ["torch-cpu"], "suites": ["accuracy"]},
])
def test_the_count_before_expansion_is_the_plans_cell_count(registry, table):
    data = {"name": "t", "seeds": [0, 1], "matrix": [table]}
    assert count_cells(data, registry) == len(plan_from_dict(data, registry).cells)


def test_the_expanded_plan_counts_the_baselines_it_adds(registry):
    data = {"name": "t", "matrix": [{"models": ["mlp"], "datasets": ["digits"],
                                     "methods": [{"name": "random", "sparsity": [0.5, 0.9]}],
                                     "backends": ["torch-cpu"], "suites": ["latency"]}]}
    assert count_cells(data, registry) == 2  # before the dense baseline is added
    with pytest.raises(PlanTooLarge) as info:
        plan_from_dict(data, registry, max_cells=2)
    assert info.value.cells == 3 and "dense baselines included" in str(info.value)
    assert len(plan_from_dict(data, registry, max_cells=None).cells) == 3


def test_a_plan_at_the_limit_runs_and_no_limit_means_none(registry):
    data = {"name": "t", "matrix": [{"models": ["mlp"], "datasets": ["digits"], "methods": ["dense"],
                                     "backends": ["torch-cpu"], "suites": ["size"]}]}
    assert len(plan_from_dict(data, registry, max_cells=1).cells) == 1


def threads_suite(threads) -> dict:
    return {"name": "t", "matrix": [{"models": ["mlp"], "datasets": ["digits"], "methods": ["dense"],
                                     "backends": [{"name": "onnxruntime-cpu", "threads": threads}],
                                     "suites": ["latency"]}]}


@pytest.mark.parametrize("backend", ["onnxruntime-cpu", "torch-cpu"])
def test_more_threads_than_cores_are_refused_naming_key_value_and_bound(registry, backend):
    data = threads_suite(100_000)
    data["matrix"][0]["backends"][0]["name"] = backend
    with pytest.raises(SuiteFileError) as info:
        plan_from_dict(data, registry, path="t.toml")
    cores = cpu_cores()
    assert info.value.problems == [("matrix[0].backends[0].threads",
                                    f"100000 is out of range: must be in [1, {cores}] "
                                    f"({cores}: the CPU cores this process may use)")]


def test_as_many_threads_as_cores_are_accepted(registry):
    plan = plan_from_dict(threads_suite(cpu_cores()), registry)
    assert {c.backend.params["threads"] for c in plan.cells if c.backend} == {cpu_cores()}


@pytest.mark.parametrize(("key", "values"), [
    ("latency", {"batch_sizes": [1, 10_000_000]}),
    ("latency", {"processes": 100_000}),
    ("latency", {"min_samples": 10**12}),
    ("latency", {"rotate": 10**9}),
    ("accuracy", {"batch_size": 10**9}),
    ("execution", {"timeout_s": 1e12}),
])
def test_numbers_that_would_hang_or_exhaust_a_machine_are_refused(registry, key, values):
    data = threads_suite(1)
    data["settings"] = {key: values}
    with pytest.raises(SuiteFileError) as info:
        plan_from_dict(data, registry, path="t.toml")
    [(where, reason)] = info.value.problems
    assert where.startswith(f"settings.{key}.{next(iter(values))}") and "out of range" in reason


def test_run_refuses_an_oversized_plan_with_exit_2_and_runs_it_with_yes(harness_cli, suite_file, tmp_path):
    sizes = ", ".join(str(n) for n in range(8, 108))
    sparsities = ", ".join(str(round(0.0001 * i, 4)) for i in range(1, 1001))
    big = suite_file(f"""
        name = "big"
        seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        [[matrix]]
        models = ["mlp"]
        datasets = [{{ name = "synthetic", n = [{sizes}] }}]
        methods = [{{ name = "random", sparsity = [{sparsities}] }}]
        suites = ["size"]
        """)
    db = tmp_path / "big.db"
    proc = harness_cli("run", big, "--db", db)
    assert proc.returncode == 2, proc.stderr
    assert "the plan has 1,000,000 cells" in proc.stderr and "limit of 10,000" in proc.stderr
    assert "--yes" in proc.stderr and "Traceback" not in proc.stderr
    assert not db.exists()  # refused before the store was opened
    small = suite_file("""
        name = "small"
        [[matrix]]
        models = ["mlp"]
        datasets = [{ name = "synthetic", n = 16 }]
        methods = ["dense"]
        suites = ["size"]
        """, name="small.toml")
    proc = harness_cli("run", small, "--db", db, "--yes", "--no-leaderboard")
    assert proc.returncode == 0, proc.stderr
    assert "suite small: 1 cells" in proc.stderr


def test_a_malformed_table_counts_nothing_and_is_reported_by_validation(registry):
    data = {"name": "t", "matrix": [{"models": ["mlp"], "datasets": ["digits"], "methods": ["dense"],
                                     "suites": "size" * 5000}]}
    assert count_cells(data, registry) == 0
    with pytest.raises(SuiteFileError):  # the suite-file error, not a size refusal
        plan_from_dict(data, registry, max_cells=CELL_LIMIT)
