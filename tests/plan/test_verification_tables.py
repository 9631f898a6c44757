"""Suite files with verifiers: a matrix's verifiers key for per-verifier suites, [[verification]]
tables of benchmarks, and the errors that name the file, the key and the reason."""

from __future__ import annotations

import pytest

from harness.plan.cells import BENCHMARK_DATASET
from harness.plan.suitefile import SuiteFileError, plan_from_dict
from harness.plugin.manager import load_host


@pytest.fixture(scope="module")
def registry():
    return load_host().registry


def verification(**overrides) -> dict:
    table = {"benchmarks": [{"name": "soundnessbench", "arch": ["mlp", "cnn"], "planted": 2}],
             "verifiers": ["ibp", {"name": "pgd", "restarts": [5, 10]}]}
    table.update(overrides)
    return table


def problems(data: dict, registry, tmp_path=None) -> dict[str, str]:
    with pytest.raises(SuiteFileError) as info:
        plan_from_dict({"name": "t", **data}, registry, path="bad.toml", base_dir=tmp_path)
    assert str(info.value).startswith("bad.toml: ")
    return dict(info.value.problems)


def test_verification_tables_expand_benchmarks_methods_and_verifiers(registry):
    plan = plan_from_dict({"name": "t", "seeds": [0, 1], "verification": [verification(
        methods=["dense", {"name": "global-magnitude", "sparsity": 0.5}])]}, registry)
    cells = plan.cells
    assert len(cells) == 2 * 2 * 2 * 3  # archs x methods x seeds x (ibp, pgd x 2)
    assert {c.suite for c in cells} == {"verification"} and all(c.benchmark for c in cells)
    c = cells[0]
    assert c.identity["model"] == "soundnessbench" and c.identity["dataset"] == BENCHMARK_DATASET
    assert c.identity["backend"] in ("ibp", "pgd") and c.backend is None and c.verifier is not None
    assert {c.model.params["arch"] for c in cells} == {"mlp", "cnn"}
    assert c.model.params["epochs"] == 2000  # defaults are part of the identity
    assert {c.identity["backend_params"].get("restarts") for c in cells if c.verifier.name == "pgd"} == {5, 10}
    # Dense cells come first, and no baselines are added: verdicts are scored against ground truth.
    assert [c.method.name for c in cells][:12] == ["dense"] * 12 and not any(c.implicit for c in cells)


def test_a_suite_file_of_verification_tables_alone_needs_no_matrix(registry):
    plan = plan_from_dict({"name": "t", "verification": [verification(benchmarks=["soundnessbench"])]}, registry)
    assert len(plan.cells) == 3


def test_per_verifier_suites_run_on_the_matrix_verifiers(registry):
    plan = plan_from_dict({"name": "t", "matrix": [{
        "models": ["mlp"], "datasets": ["digits"], "methods": [{"name": "global-magnitude", "sparsity": 0.5}],
        "verifiers": ["crown", "milp"], "backends": ["onnxruntime-cpu"], "suites": ["robustness", "accuracy"]}]},
        registry)
    robust = [c for c in plan.cells if c.suite == "robustness"]
    assert {(c.method.name, c.identity["backend"]) for c in robust} == {
        (m, v) for m in ("dense", "global-magnitude") for v in ("crown", "milp")}  # dense added as baseline
    assert {c.identity["backend"] for c in plan.cells if c.suite == "accuracy"} == {"onnxruntime-cpu"}


def test_robustness_skips_methods_without_onnx_and_unavailable_verifiers(registry, tmp_path):
    plan = plan_from_dict({"name": "t", "matrix": [{
        "models": ["mlp"], "datasets": ["digits"], "methods": ["dense"],
        "verifiers": [{"name": "vnncomp", "tool": str(tmp_path)}], "suites": ["robustness"]}]}, registry)
    (cell,) = plan.cells
    assert cell.skip_reason == f"verifier vnncomp is not available: no run_instance.sh in {tmp_path}"


def test_tool_and_folder_paths_resolve_against_the_suite_file(registry, tmp_path):
    (tmp_path / "tools" / "t").mkdir(parents=True)
    (tmp_path / "tools" / "t" / "run_instance.sh").write_text("#!/bin/bash\n")
    (tmp_path / "bench").mkdir()
    plan = plan_from_dict({"name": "t", "verification": [{
        "benchmarks": [{"name": "folder", "path": "bench"}],
        "verifiers": [{"name": "vnncomp", "tool": "tools/t"}]}]}, registry, base_dir=tmp_path)
    (cell,) = plan.cells
    assert cell.model.params["path"] == str((tmp_path / "bench").resolve())
    assert cell.verifier.params["tool"] == str((tmp_path / "tools" / "t").resolve()) and cell.skip_reason is None


def test_a_bad_truth_file_is_an_error_of_the_suite_file(registry, tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "truth.csv").write_text("instance,truth\nnet-prop_1,perhaps\n")
    found = problems({"verification": [verification(benchmarks=[
        "soundnessbench", {"name": "folder", "path": "bench", "truth": "truth.csv"}])]}, registry, tmp_path)
    assert "truth must be holds, violated, unsat or sat, got 'perhaps'" in found["verification[0].benchmarks[1].truth"]
    (tmp_path / "truth.csv").write_text("instance,truth\nnet-prop_1,sat\n")
    plan = plan_from_dict({"name": "t", "verification": [{"benchmarks": [{"name": "folder", "path": "bench",
                                                                            "truth": "truth.csv"}],
                                                          "verifiers": ["ibp"]}]}, registry, base_dir=tmp_path)
    assert plan.cells[0].model.params["truth"] == str((tmp_path / "truth.csv").resolve())
    # Without a truth the benchmark's identity is what it was before the key existed.
    plan = plan_from_dict({"name": "t", "verification": [{"benchmarks": [{"name": "folder", "path": "bench"}],
                                                          "verifiers": ["ibp"]}]}, registry, base_dir=tmp_path)
    assert plan.cells[0].model.params == {"path": str((tmp_path / "bench").resolve())}


@pytest.mark.parametrize("table, key, reason", [
    ({"benchmarks": ["acme"]}, "verification[0].benchmarks[0]", "unknown benchmark source 'acme' (known: "
                                                                 "soundnessbench, folder)"),
    ({"benchmarks": [{"name": "soundnessbench", "arch": "rnn"}]}, "verification[0].benchmarks[0].arch",
     "'rnn' is not one of 'mlp', 'cnn'"),
    ({"benchmarks": [{"name": "soundnessbench", "epsilon": 0}]}, "verification[0].benchmarks[0].epsilon",
     "out of range"),
    ({"benchmarks": [{"name": "folder", "path": "nowhere"}]}, "verification[0].benchmarks[0].path", "not found:"),
    ({"benchmarks": [{"name": "folder", "path": ".", "truth": "no.csv"}]}, "verification[0].benchmarks[0].truth",
     "not found:"),
    ({"verifiers": ["z3"]}, "verification[0].verifiers[0]", "unknown verifier 'z3' (known: crown, ibp, marabou, "
                                                            "milp, pgd, unsound-pgd, vnncomp)"),
    ({"verifiers": [{"name": "pgd", "restarts": 0}]}, "verification[0].verifiers[0].restarts", "out of range"),
    ({"verifiers": [{"name": "vnncomp"}]}, "verification[0].verifiers[0].tool", "is required"),
    ({"verifiers": [{"name": "vnncomp", "tool": "no/such/tool"}]}, "verification[0].verifiers[0].tool",
     "not found:"),
    ({"verifiers": []}, "verification[0].verifiers", "is required: a non-empty list"),
    ({"suites": ["accuracy"]}, "verification[0].suites[0]", "does not run on verification benchmarks"),
    ({"methods": ["magnitude"]}, "verification[0].methods[0]", "unknown method 'magnitude'"),
    ({"models": ["mlp"]}, "verification[0].models",
     "unknown key 'models': did you mean 'methods'? (known: benchmarks, methods, verifiers, suites)"),
])
def test_verification_table_errors(registry, tmp_path, table, key, reason):
    found = problems({"verification": [verification(**table)]}, registry, tmp_path)
    assert key in found, found
    assert reason in found[key], found[key]


def test_missing_benchmarks(registry):
    table = verification()
    del table["benchmarks"]
    assert "is required" in problems({"verification": [table]}, registry)["verification[0].benchmarks"]


def test_matrix_errors_about_verifiers(registry):
    base = {"models": ["mlp"], "datasets": ["digits"], "methods": ["dense"]}
    found = problems({"matrix": [{**base, "suites": ["robustness"]}]}, registry)
    assert found["matrix[0].verifiers"] == "is required: a non-empty list (suite robustness runs per verifier)"
    found = problems({"matrix": [{**base, "backends": ["torch-cpu"], "verifiers": ["ibp"], "suites": ["size"]}]},
                     registry)
    assert "no suite of this table runs per verifier" in found["matrix[0].verifiers"]
    found = problems({"matrix": [{**base, "verifiers": ["ibp"], "suites": ["verification"]}]}, registry)
    assert "list it in a [[verification]] table" in found["matrix[0].suites[0]"]
    assert "unknown key" not in str(found)


def matrix(**overrides) -> dict:
    table = {"models": ["mlp"], "datasets": ["digits"], "methods": ["dense"], "verifiers": ["ibp"],
             "suites": ["robustness"]}
    table.update(overrides)
    return table


# The same mistake in a [[matrix]] table and in a [[verification]] table: one reader reads both.
SAME_MISTAKE = {
    "an unknown method": ("methods", ["no-such-method"], "methods[0]"),
    "a method that is neither a name nor a table": ("methods", [3], "methods[0]"),
    "a method table without a name": ("methods", [{"sparsity": 0.5}], "methods[0]"),
    "a method name that is not a string": ("methods", [{"name": 7}], "methods[0].name"),
    "a method parameter out of range": ("methods", [{"name": "global-magnitude", "sparsity": 2.0}],
                                        "methods[0].sparsity"),
    "a pipeline of one step": ("methods", [{"pipeline": ["global-magnitude"]}], "methods[0].pipeline"),
    "a pipeline entry with other keys": ("methods", [{"pipeline": ["global-magnitude", "int8-dynamic"],
                                                      "sparsity": 0.5}], "methods[0]"),
    "an empty list of methods": ("methods", [], "methods"),
    "an unknown verifier": ("verifiers", ["no-such-verifier"], "verifiers[0]"),
    "an unknown verifier parameter": ("verifiers", [{"name": "pgd", "tries": 3}], "verifiers[0].tries"),
    "a verifier tool folder that does not exist": ("verifiers", [{"name": "vnncomp", "tool": "no/such/folder"}],
                                                   "verifiers[0].tool"),
    "a suite with parameters": ("suites", [{"name": "SUITE", "timeout_s": 3}], "suites[0]"),
    "a suite that is not a name": ("suites", [3], "suites[0]"),
    "an unknown suite": ("suites", ["no-such-suite"], "suites[0]"),
}


@pytest.mark.parametrize("mistake", SAME_MISTAKE)
def test_the_same_mistake_gets_the_same_message_in_either_table(registry, tmp_path, mistake):
    key, value, at = SAME_MISTAKE[mistake]
    suite = {"matrix": "robustness", "verification": "verification"}

    def reason(table: str, build) -> str:
        entries = [dict(v, name=suite[table]) if isinstance(v, dict) and v.get("name") == "SUITE" else v
                   for v in value]
        found = problems({table: [build(**{key: entries})]}, registry, tmp_path)
        assert f"{table}[0].{at}" in found, found
        # a suite with parameters is told to use its own settings table; the rest of the wording is the same
        return found[f"{table}[0].{at}"].replace(f"[settings.{suite[table]}]", "[settings.SUITE]")

    assert reason("matrix", matrix) == reason("verification", verification)


def test_a_suite_in_the_wrong_table_says_which_table_it_belongs_in(registry):
    assert problems({"matrix": [matrix(suites=["verification"])]}, registry)["matrix[0].suites[0]"] == (
        "suite verification runs on verification benchmarks: list it in a [[verification]] table")
    assert problems({"verification": [verification(suites=["accuracy"])]}, registry)[
        "verification[0].suites[0]"] == ("suite accuracy does not run on verification benchmarks: list it in a "
                                         "[[matrix]] table")


def test_a_verification_table_names_its_suites_as_the_matrix_does(registry):
    plan = plan_from_dict({"name": "t", "verification": [verification(
        benchmarks=["soundnessbench"], verifiers=["ibp"], suites=[{"name": "verification"}])]}, registry)
    assert [c.suite for c in plan.cells] == ["verification"]
