"""Suite files: validation against the real registry, grid expansion, baselines, skips and cell keys.

Nothing here runs a suite: plans are built and inspected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from harness.api import BackendSpec, hookimpl
from harness.core.identity import Component
from harness.plan.cells import Cell, Plan
from harness.plan.suitefile import SuiteFileError, load_plan, plan_from_dict
from harness.plugin.manager import load_host

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "suites" / "smoke.toml"


@pytest.fixture(scope="module")
def registry():
    return load_host().registry


def matrix(**overrides) -> dict:
    entry = {"models": ["lenet5"], "datasets": ["digits"], "methods": ["dense"], "backends": ["torch-cpu"],
             "suites": ["size"]}
    entry.update(overrides)
    return entry


def suite(**top) -> dict:
    data = {"name": "t", "matrix": [matrix()]}
    data.update(top)
    return data


def problems_of(data: dict, registry, path: str = "bad.toml") -> SuiteFileError:
    with pytest.raises(SuiteFileError) as info:
        plan_from_dict(data, registry, path=path)
    return info.value


def load_error(path: Path, registry) -> SuiteFileError:
    with pytest.raises(SuiteFileError) as info:
        load_plan(path, registry)
    return info.value


def assert_problem(exc: SuiteFileError, key: str, *fragments: str) -> str:
    """The problem at ``key`` exists, its reason contains ``fragments`` and str(exc) shows it."""
    reasons = [r for k, r in exc.problems if k == key]
    assert reasons, f"no problem at {key!r}: {exc.problems}"
    reason = reasons[0]
    for f in fragments:
        assert f in reason, (f, reason)
    assert f"{exc.path}: {key}: {reason}" in str(exc).splitlines()
    return reason


def keyed(cell) -> tuple:
    return (cell.method.name, json.dumps(cell.method.params, sort_keys=True),
            cell.backend.name if cell.backend else None, cell.suite)


# --------------------------------------------------------------------------- the smoke suite


@pytest.fixture(scope="module")
def smoke(registry) -> Plan:
    return load_plan(SMOKE, registry)


def test_smoke_cell_count(smoke):
    methods = 4  # dense, global-magnitude x 2 sparsities, int8-dynamic
    per_backend = methods * 2 * 2  # x (torch-cpu, onnxruntime-cpu) x (accuracy, latency)
    size = methods  # size is per artifact
    assert len(smoke.cells) == per_backend + size == 20
    assert len({c.key for c in smoke.cells}) == 20
    assert smoke.name == "smoke"
    assert smoke.version == "1"
    assert smoke.seeds == [0]
    assert smoke.path == str(SMOKE)
    assert smoke.text == SMOKE.read_text()


def test_smoke_size_cells_have_no_backend(smoke):
    size = [c for c in smoke.cells if c.suite == "size"]
    assert len(size) == 4
    assert all(c.backend is None for c in size)
    assert all(c.backend is not None for c in smoke.cells if c.suite != "size")
    assert {c.artifact_group for c in size} == {c.artifact_group for c in smoke.cells}
    assert all(c.identity["backend"] is None and c.identity["backend_params"] == {} for c in size)


def test_smoke_int8_on_torch_is_skipped_with_reason(smoke):
    skipped = [c for c in smoke.cells if c.skip_reason]
    assert {(c.method.name, c.backend.name) for c in skipped} == {("int8-dynamic", "torch-cpu")}
    assert {c.suite for c in skipped} == {"accuracy", "latency"}
    for c in skipped:
        assert "int8-dynamic" in c.skip_reason
        assert "torch-cpu" in c.skip_reason
    # int8 runs on onnxruntime, and its size cell is planned
    int8 = [c for c in smoke.cells if c.method.name == "int8-dynamic" and not c.skip_reason]
    assert {(c.backend.name if c.backend else None, c.suite) for c in int8} == {
        ("onnxruntime-cpu", "accuracy"), ("onnxruntime-cpu", "latency"), (None, "size")}


def test_smoke_dense_cells_first(smoke):
    names = [c.method.name for c in smoke.cells]
    n_dense = names.count("dense")
    assert n_dense == 5
    assert names[:n_dense] == ["dense"] * n_dense
    assert not any(c.implicit for c in smoke.cells)


def test_smoke_cells_grouped_by_artifact(smoke):
    groups = [c.artifact_group for c in smoke.cells]
    seen: list[str] = []
    for g in groups:
        if not seen or seen[-1] != g:
            assert g not in seen, "an artifact's cells are not contiguous"
            seen.append(g)
    assert len(seen) == 4


def test_smoke_grid_expands_sparsity(smoke):
    gm = [c for c in smoke.cells if c.method.name == "global-magnitude"]
    assert sorted({c.method.params["sparsity"] for c in gm}) == [0.5, 0.9]
    assert all(c.method.params == {"sparsity": c.method.params["sparsity"]} for c in gm)
    for sparsity in (0.5, 0.9):
        cells = {(c.backend.name if c.backend else None, c.suite) for c in gm
                 if c.method.params["sparsity"] == sparsity}
        assert cells == {("torch-cpu", "accuracy"), ("onnxruntime-cpu", "accuracy"), ("torch-cpu", "latency"),
                         ("onnxruntime-cpu", "latency"), (None, "size")}
    # the two sparsities are two artifacts
    assert len({c.artifact_group for c in gm}) == 2


def test_smoke_settings_and_defaults(smoke):
    assert smoke.settings["latency"]["batch_sizes"] == [1, 32]
    assert smoke.settings["latency"]["profile"] == "smoke"
    assert smoke.settings["latency"]["rotate"] == 4
    assert smoke.settings["accuracy"] == {"batch_size": 256, "quality_gate": 0.99, "retrieval_k": 10}
    assert set(smoke.settings) == {"accuracy", "latency", "size", "soundness", "verification", "robustness",
                                   "robustness-shift", "energy"}
    assert smoke.execution == {"timeout_s": 600.0, "memory_limit_mb": 0}


def test_defaults_filled_into_component_params(smoke):
    int8 = next(c for c in smoke.cells if c.method.name == "int8-dynamic")
    assert int8.method.params == {"per_channel": False, "reduce_range": False}
    ort = next(c for c in smoke.cells if c.backend and c.backend.name == "onnxruntime-cpu")
    assert ort.backend.params == {"threads": 1}
    assert smoke.cells[0].model.params == {}  # no weights key when none given


# --------------------------------------------------------------------------- baselines


def test_implicit_dense_baselines_added(registry):
    data = suite(matrix=[matrix(methods=[{"name": "global-magnitude", "sparsity": 0.5}],
                                backends=["torch-cpu", "onnxruntime-cpu"],
                                suites=["accuracy", "latency", "size"])])
    plan = plan_from_dict(data, registry)
    implicit = [c for c in plan.cells if c.implicit]
    # accuracy (top1_delta) and latency (speedup) need a baseline; size does not
    assert {(c.method.name, c.backend.name, c.suite) for c in implicit} == {
        ("dense", b, s) for b in ("torch-cpu", "onnxruntime-cpu") for s in ("accuracy", "latency")}
    assert all(c.method.params == {} for c in implicit)
    assert all(not c.implicit for c in plan.cells if c.method.name != "dense")
    assert len(plan.cells) == 2 * 2 + 1 + 4
    assert [c.method.name for c in plan.cells[:4]] == ["dense"] * 4
    # each baseline is exactly the identity its compressed cell compares against
    baseline_keys = {c.key for c in implicit}
    from harness.core.identity import digest

    for c in plan.cells:
        if c.suite in ("accuracy", "latency") and c.method.name != "dense":
            assert digest(c.baseline_identity()) in baseline_keys


def test_implicit_baselines_follow_seeds(registry):
    data = suite(seeds=[1, 2], matrix=[matrix(methods=[{"name": "random", "sparsity": [0.3, 0.6]}],
                                              suites=["accuracy"])])
    plan = plan_from_dict(data, registry)
    implicit = [c for c in plan.cells if c.implicit]
    assert sorted(c.seed for c in implicit) == [1, 2]
    assert len(plan.cells) == 2 * 2 + 2


def test_explicit_dense_means_no_implicit_cells(registry):
    data = suite(matrix=[matrix(methods=["dense", {"name": "global-magnitude", "sparsity": 0.5}],
                                suites=["accuracy"])])
    plan = plan_from_dict(data, registry)
    assert len(plan.cells) == 2
    assert not any(c.implicit for c in plan.cells)
    assert [c.method.name for c in plan.cells] == ["dense", "global-magnitude"]


def test_no_baseline_for_suites_that_do_not_need_it(registry):
    data = suite(matrix=[matrix(methods=[{"name": "layer-magnitude", "sparsity": 0.5}],
                                suites=["size"])])
    plan = plan_from_dict(data, registry)
    assert [c.method.name for c in plan.cells] == ["layer-magnitude"]


# --------------------------------------------------------------------------- expansion


def test_backend_param_grid_and_seeds(registry):
    data = suite(seeds=[0, 7], matrix=[matrix(backends=[{"name": "onnxruntime-cpu", "threads": [1, 2]}],
                                              suites=["latency", "size"])])
    plan = plan_from_dict(data, registry)
    latency = [c for c in plan.cells if c.suite == "latency"]
    assert sorted((c.seed, c.backend.params["threads"]) for c in latency) == [(0, 1), (0, 2), (7, 1), (7, 2)]
    size = [c for c in plan.cells if c.suite == "size"]
    assert sorted(c.seed for c in size) == [0, 7]  # once per artifact, not per backend
    assert len(plan.cells) == 6


def test_two_matrix_entries_union_and_dedupe(registry):
    entry = matrix(methods=["dense", {"name": "random", "sparsity": 0.5}])
    data = suite(matrix=[entry, dict(entry), matrix(models=["mlp"])])
    plan = plan_from_dict(data, registry)
    assert len(plan.cells) == 3
    assert sorted((c.model.name, c.method.name) for c in plan.cells) == [
        ("lenet5", "dense"), ("lenet5", "random"), ("mlp", "dense")]


def test_weights_file_resolved_relative_to_suite_file(registry, suite_file, tmp_path, monkeypatch):
    (tmp_path / "w.pt").write_bytes(b"not really a state dict")
    path = suite_file("""
        name = "w"
        [[matrix]]
        models = [{ name = "lenet5", weights = "w.pt" }]
        datasets = ["digits"]
        methods = ["dense"]
        backends = ["torch-cpu"]
        suites = ["size"]
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plan = load_plan(path, registry)
    assert plan.cells[0].model.params == {"weights": str((tmp_path / "w.pt").resolve())}


def test_unavailable_backend_cells_skipped_with_reason(harness_host):
    @hookimpl
    def harness_register_backends(register):
        register(BackendSpec(name="npu", session=lambda a, p: None, accepts=("onnx",),
                             available=lambda: (False, "no NPU driver")))
        register(BackendSpec(name="flaky", session=lambda a, p: None, accepts=("onnx",),
                             available=lambda: 1 / 0))

    host = harness_host(("npu", types.SimpleNamespace(harness_register_backends=harness_register_backends)))
    data = suite(matrix=[matrix(backends=["npu", "flaky", "onnxruntime-cpu"], suites=["latency"])])
    plan = plan_from_dict(data, host.registry)
    reasons = {c.backend.name: c.skip_reason for c in plan.cells}
    assert reasons["npu"] == "backend npu is not available: no NPU driver"
    assert "backend flaky is not available" in reasons["flaky"]
    assert "ZeroDivisionError" in reasons["flaky"]
    assert reasons["onnxruntime-cpu"] is None


# --------------------------------------------------------------------------- bad suite files


def test_invalid_toml(registry, suite_file):
    path = suite_file('name = "x"\n[[matrix]\nmodels = ["lenet5"]\n', name="broken.toml")
    exc = load_error(path, registry)
    assert exc.path == str(path)
    assert len(exc.problems) == 1
    assert "invalid TOML" in exc.problems[0][1]
    assert str(exc).startswith(f"{path}: invalid TOML")
    assert "line 2" in str(exc)


def test_unreadable_file(registry, tmp_path):
    exc = load_error(tmp_path / "missing.toml", registry)
    assert str(tmp_path / "missing.toml") in str(exc)
    assert "cannot read the suite file" in str(exc)


def test_missing_name(registry):
    data = suite()
    del data["name"]
    assert_problem(problems_of(data, registry), "name", "required")


def test_empty_name(registry):
    assert_problem(problems_of(suite(name=""), registry), "name", "non-empty string")


def test_unknown_top_level_key(registry):
    assert_problem(problems_of(suite(matrices=[]), registry), "matrices", "unknown key",
                   "description, matrix, name, seeds, settings, verification, version")


def test_missing_matrix(registry):
    assert_problem(problems_of({"name": "x"}, registry), "matrix", "required")


def test_unknown_matrix_key(registry):
    exc = problems_of(suite(matrix=[matrix(model=["lenet5"])]), registry)
    assert_problem(exc, "matrix[0].model", "unknown key", "models, datasets, methods, backends, verifiers, suites")


def test_missing_matrix_list(registry):
    entry = matrix(suites=["accuracy"])
    del entry["backends"]
    assert_problem(problems_of(suite(matrix=[matrix(), entry]), registry), "matrix[1].backends",
                   "non-empty list", "(suite accuracy runs per backend)")


def test_backends_may_be_left_out_when_no_suite_runs_per_backend(registry):
    entry = matrix()
    del entry["backends"]
    plan = plan_from_dict(suite(matrix=[entry]), registry)
    assert [(c.suite, c.backend) for c in plan.cells] == [("size", None)]


@pytest.mark.parametrize("mkey, bad, kind, known", [
    ("models", "lenet6", "model", "hf-causal-lm, hf-classifier, hf-encoder, lenet5, mlp, mobilenet_v2, "
                                  "onnx-file, resnet-small, resnet18, resnet50, tiny-lm, vit-tiny, wide-mlp"),
    ("datasets", "cifar100", "dataset", "cifar10, digits, imagefolder, mnist, synthetic, text-classification, "
                                        "text-embedding, text-lm"),
    ("methods", "magnitude", "method", "block, channel-l1, dense, finetune, global-magnitude, gradient, int8-dynamic, "
                                       "int8-static, kbit, layer-magnitude, lottery-ticket, lrp-mixed-precision, "
                                       "matmul-nbits, mixed-precision, n-m, random, splitquant, svd, tensor-train, "
                                       "wanda"),
    ("backends", "cuda", "backend", "arm, onnxruntime-cpu, torch-cpu, torch-cuda, torch-cuda-kernels, "
                                    "torch-sparse-cpu, wasm"),
    ("suites", "speed", "suite", "accuracy, energy, latency, robustness, robustness-shift, size, soundness, "
                                "verification"),
])
def test_unknown_names_list_known(registry, mkey, bad, kind, known):
    entry = matrix()
    entry[mkey] = [entry[mkey][0], bad]
    exc = problems_of(suite(matrix=[entry]), registry)
    assert_problem(exc, f"matrix[0].{mkey}[1]", f"unknown {kind} {bad!r}", f"(known: {known})")


def test_entry_without_name(registry):
    exc = problems_of(suite(matrix=[matrix(methods=[{"sparsity": 0.5}])]), registry)
    assert_problem(exc, "matrix[0].methods[0]", "needs a 'name'")


def test_entry_of_wrong_type(registry):
    exc = problems_of(suite(matrix=[matrix(models=[5])]), registry)
    assert_problem(exc, "matrix[0].models[0]", "expected a name or a table")


def test_suite_with_parameters_in_matrix(registry):
    exc = problems_of(suite(matrix=[matrix(suites=[{"name": "latency", "profile": "smoke"}])]), registry)
    assert_problem(exc, "matrix[0].suites[0]", "[settings.latency]")


def test_wrong_type(registry):
    exc = problems_of(suite(matrix=[matrix(methods=[{"name": "global-magnitude", "sparsity": "high"}])]),
                      registry)
    assert_problem(exc, "matrix[0].methods[0].sparsity", "expected a number", "'high'")


@pytest.mark.parametrize("value", [1.5, 1.0, -0.1])
def test_out_of_range(registry, value):
    exc = problems_of(suite(matrix=[matrix(methods=[{"name": "global-magnitude", "sparsity": value}])]),
                      registry)
    assert_problem(exc, "matrix[0].methods[0].sparsity", "out of range", "[0.0, 1.0)")


def test_out_of_range_inside_grid(registry):
    exc = problems_of(suite(matrix=[matrix(methods=[{"name": "random", "sparsity": [0.5, 1.0]}])]), registry)
    assert_problem(exc, "matrix[0].methods[0].sparsity[1]", "out of range")


def test_nan_sparsity_rejected(registry, suite_file):
    path = suite_file("""
        name = "nan"
        [[matrix]]
        models = ["lenet5"]
        datasets = ["digits"]
        methods = [{ name = "global-magnitude", sparsity = nan }]
        backends = ["torch-cpu"]
        suites = ["size"]
    """)
    assert_problem(load_error(path, registry), "matrix[0].methods[0].sparsity", "out of range")


def test_missing_required_method_parameter(registry):
    exc = problems_of(suite(matrix=[matrix(methods=["global-magnitude"])]), registry)
    assert_problem(exc, "matrix[0].methods[0].sparsity", "is required")


def test_unknown_method_parameter(registry):
    exc = problems_of(suite(matrix=[matrix(methods=[{"name": "random", "sparsity": 0.5, "amount": 2}])]),
                      registry)
    assert_problem(exc, "matrix[0].methods[0].amount", "unknown parameter", "known: sparsity")


def test_unknown_backend_parameter(registry):
    exc = problems_of(suite(matrix=[matrix(backends=[{"name": "torch-cpu", "thread": 2}])]), registry)
    assert_problem(exc, "matrix[0].backends[0].thread", "unknown parameter", "threads")


@pytest.mark.parametrize("seeds", [3, "0", [], [-1], [0, -5], [True], [1.5]])
def test_bad_seeds(registry, seeds):
    exc = problems_of(suite(seeds=seeds), registry)
    assert_problem(exc, "seeds", "non-negative integers")


def test_repeated_seed(registry):
    assert_problem(problems_of(suite(seeds=[1, 1]), registry), "seeds", "repeats")


def test_settings_for_unknown_suite(registry):
    exc = problems_of(suite(settings={"speed": {"x": 1}}), registry)
    assert_problem(exc, "settings.speed", "unknown suite 'speed'", "execution, ", "latency")


def test_unknown_setting_key(registry):
    exc = problems_of(suite(settings={"latency": {"batch_size": [1]}}), registry)
    assert_problem(exc, "settings.latency.batch_size", "unknown parameter", "batch_sizes", "profile")


def test_bad_setting_value(registry):
    exc = problems_of(suite(settings={"latency": {"profile": "turbo", "batch_sizes": [1]}}), registry)
    assert_problem(exc, "settings.latency.profile", "'turbo' is not one of")


def test_settings_not_a_table(registry):
    assert_problem(problems_of(suite(settings={"latency": 3}), registry), "settings.latency", "table")


def test_execution_settings(registry):
    plan = plan_from_dict(suite(settings={"execution": {"timeout_s": 30, "memory_limit_mb": 2048}}), registry)
    assert plan.execution == {"timeout_s": 30.0, "memory_limit_mb": 2048}
    exc = problems_of(suite(settings={"execution": {"timeout_s": 0.5}}), registry)
    assert_problem(exc, "settings.execution.timeout_s", "out of range")


def test_weights_file_missing(registry, suite_file, tmp_path):
    path = suite_file("""
        name = "w"
        [[matrix]]
        models = [{ name = "lenet5", weights = "nope.pt" }]
        datasets = ["digits"]
        methods = ["dense"]
        backends = ["torch-cpu"]
        suites = ["size"]
    """, name="weights.toml")
    exc = load_error(path, registry)
    assert exc.path == str(path)
    assert_problem(exc, "matrix[0].models[0].weights", "file not found", str(tmp_path / "nope.pt"))


def test_weights_is_not_a_grid(registry):
    exc = problems_of(suite(matrix=[matrix(models=[{"name": "lenet5", "weights": ["a.pt", "b.pt"]}])]),
                      registry)
    assert_problem(exc, "matrix[0].models[0].weights", "does not take a list")


def test_multiple_problems_reported_together(registry, suite_file):
    path = suite_file("""
        seeds = [-1]
        colour = "blue"

        [[matrix]]
        models = ["lenet6"]
        datasets = ["digits"]
        methods = [{ name = "global-magnitude", sparsity = 1.5 }, { name = "random", sparsity = 0.5, x = 1 }]
        backends = ["gpu"]
        suites = ["accuracy"]

        [settings.speed]
        x = 1
    """, name="many.toml")
    exc = load_error(path, registry)
    keys = [k for k, _ in exc.problems]
    expected = ["colour", "name", "seeds", "settings.speed", "matrix[0].models[0]",
                "matrix[0].methods[0].sparsity", "matrix[0].methods[1].x", "matrix[0].backends[0]"]
    assert sorted(keys) == sorted(expected)
    lines = str(exc).splitlines()
    assert len(lines) == len(expected)
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_error_is_a_value_error_with_path(registry):
    exc = problems_of({"name": 3, "matrix": [matrix()]}, registry, path="somewhere/x.toml")
    assert isinstance(exc, ValueError)
    assert exc.path == "somewhere/x.toml"
    assert str(exc) == "somewhere/x.toml: name: is required and must be a non-empty string"


# --------------------------------------------------------------------------- CLI


def test_cli_run_bad_suite_exits_2_and_runs_nothing(harness_cli, suite_file, tmp_path):
    path = suite_file("""
        name = "bad"
        [[matrix]]
        models = ["lenet5"]
        datasets = ["digits"]
        methods = [{ name = "global-magnitude", sparsity = "high" }]
        backends = ["torch-cpu"]
        suites = ["size"]
    """, name="bad_suite.toml")
    db = tmp_path / "out" / "lb.db"
    proc = harness_cli("run", path, "--db", db, "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "bad_suite.toml" in proc.stderr
    assert "matrix[0].methods[0].sparsity" in proc.stderr
    assert "expected a number" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not db.exists()
    assert not db.parent.exists()
    assert not (tmp_path / "cache").exists()


def test_cli_run_invalid_toml_exits_2(harness_cli, suite_file, tmp_path):
    path = suite_file("name = \n", name="garbage.toml")
    db = tmp_path / "lb.db"
    proc = harness_cli("run", path, "--db", db)
    assert proc.returncode == 2
    assert "garbage.toml" in proc.stderr
    assert "invalid TOML" in proc.stderr
    assert not db.exists()


# --------------------------------------------------------------------------- cell keys


SUITE_TEXT = """
    name = "keys"
    seeds = [0, 1]
    [[matrix]]
    models = ["lenet5", "mlp"]
    datasets = ["digits"]
    methods = ["dense", { name = "random", sparsity = [0.25, 0.75] }]
    backends = ["torch-cpu", { name = "onnxruntime-cpu", threads = 2 }]
    suites = ["accuracy", "latency", "size"]
"""


def test_identical_text_identical_keys(registry, suite_file):
    a = load_plan(suite_file(SUITE_TEXT, name="a.toml"), registry)
    b = load_plan(suite_file(SUITE_TEXT, name="b.toml"), registry)
    assert [c.key for c in a.cells] == [c.key for c in b.cells]
    assert [c.artifact_group for c in a.cells] == [c.artifact_group for c in b.cells]
    assert a.sha256 == b.sha256
    assert len(a.cells) == len({c.key for c in a.cells}) == 2 * 3 * 2 * (2 * 2 + 1)


def test_keys_stable_across_processes(registry, suite_file, tmp_path):
    path = suite_file(SUITE_TEXT)
    here = [c.key for c in load_plan(path, registry).cells]
    code = ("import sys, json; from harness.plugin.manager import load_host; "
            "from harness.plan.suitefile import load_plan; "
            "print(json.dumps([c.key for c in load_plan(sys.argv[1], load_host().registry).cells]))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == here


def test_cell_keys_are_pinned():
    # Keys are stored: these digests were computed before Cell.executor became Cell.engine and must not move.
    latency = Cell(Component("mlp", {"hidden": 8}), Component("digits", {}),
                   Component("global-magnitude", {"sparsity": 0.5}), 1, Component("onnxruntime-cpu", {"threads": 1}),
                   "latency")
    robust = Cell(Component("mlp", {}), Component("digits", {}), Component("dense", {}), 0, None, "robustness",
                  verifier=Component("pgd", {"steps": 3}))
    size = Cell(Component("mlp", {}), Component("digits", {}), Component("dense", {}), 0, None, "size")
    assert (latency.key, robust.key, size.key) == ("9d157cbaf030b2e9", "8d3471aab257a152", "9fcf2c7163cada97")
    # The engine (backend or verifier) fills the store's backend column.
    assert latency.engine == latency.backend and robust.engine == robust.verifier and size.engine is None
    assert robust.identity["backend"] == "pgd" and robust.identity["backend_params"] == {"steps": 3}


def test_key_order_in_tables_does_not_matter(registry):
    a = plan_from_dict(suite(matrix=[matrix(methods=[{"name": "random", "sparsity": 0.5}])]), registry)
    b = plan_from_dict(suite(matrix=[matrix(methods=[{"sparsity": 0.5, "name": "random"}])]), registry)
    assert [c.key for c in a.cells] == [c.key for c in b.cells]


def test_default_spelled_out_is_the_same_cell(registry):
    a = plan_from_dict(suite(matrix=[matrix(backends=["torch-cpu"], suites=["latency"])]), registry)
    b = plan_from_dict(suite(matrix=[matrix(backends=[{"name": "torch-cpu", "threads": 1}],
                                            suites=["latency"])]), registry)
    assert [c.key for c in a.cells] == [c.key for c in b.cells]


@pytest.mark.parametrize("change", [
    {"methods": [{"name": "random", "sparsity": 0.6}]},
    {"methods": [{"name": "global-magnitude", "sparsity": 0.5}]},
    {"backends": [{"name": "torch-cpu", "threads": 2}]},
    {"models": ["mlp"]},
])
def test_different_params_different_keys(registry, change):
    base = plan_from_dict(suite(matrix=[matrix(methods=[{"name": "random", "sparsity": 0.5}],
                                               suites=["latency"])]), registry)
    entry = matrix(methods=[{"name": "random", "sparsity": 0.5}], suites=["latency"])
    entry.update(change)
    other = plan_from_dict(suite(matrix=[entry]), registry)
    # the compared cell, beside the dense baseline the latency suite adds
    base_cells = [c for c in base.cells if not c.implicit]
    other_cells = [c for c in other.cells if not c.implicit]
    assert len(base_cells) == len(other_cells) == 1
    assert base_cells[0].key != other_cells[0].key


def test_different_seed_different_key_and_artifact(registry):
    a = plan_from_dict(suite(seeds=[0]), registry).cells[0]
    b = plan_from_dict(suite(seeds=[1]), registry).cells[0]
    assert a.key != b.key
    assert a.artifact_group != b.artifact_group


def test_backend_does_not_change_artifact_group(registry):
    plan = plan_from_dict(suite(matrix=[matrix(backends=["torch-cpu", "onnxruntime-cpu"], suites=["latency"])]),
                          registry)
    assert len({c.key for c in plan.cells}) == 2
    assert len({c.artifact_group for c in plan.cells}) == 1


def test_plan_from_dict_text_defaults_to_canonical_json(registry):
    data = suite()
    plan = plan_from_dict(data, registry)
    assert json.loads(plan.text) == data
    assert plan.path == "<suite>"


def test_suite_text_recorded_verbatim(registry, suite_file):
    text = textwrap.dedent(SUITE_TEXT)
    plan = load_plan(suite_file(SUITE_TEXT), registry)
    assert plan.text == text
