"""The worker side (:mod:`harness.run.worker`): :func:`run_cell` on a :class:`CellTask`, in this process,
with the toy model, dataset and method and a small probe plugin whose suites measure, skip or fail.

The host the worker would load for the task's plugin folder is put in its per-process cache, so no
plugin discovery runs; one test loads a real plugin folder the way a worker process does.
"""

from __future__ import annotations

import os
import textwrap
import types
from pathlib import Path

import pytest

from harness.api import Measurement, Skip, SuiteSpec, cache_dir, hookimpl
from harness.core.paths import CACHE_ENV
from harness.devkit import toy
from harness.run import worker
from harness.run.task import CellResult, CellTask


def _measure(ctx) -> list:
    # Ints on purpose: the worker hands values and samples back as floats.
    return [Measurement("answer", 42, "count", params={"batch_size": 1}, samples=[1, 2, 3], info={"why": "probe"}),
            Measurement("flagged", 0.5, "fraction", flag="probe gate: too low")]


def _look(ctx) -> list:
    """What the suite sees: the cache folder, the artifact, the baseline, the settings."""
    return [Measurement("seen", 1.0, "count", info={
        "cache_dir": str(cache_dir()), "artifact_path": str(ctx.artifact.path), "artifact_key": ctx.artifact.key,
        "baseline_top1": ctx.baseline("top1"), "baseline_p50": ctx.baseline("p50_ms", batch_size=1),
        "missing": ctx.baseline("p50_ms", batch_size=8), "is_baseline": ctx.is_baseline,
        "settings": dict(ctx.settings), "cell": dict(ctx.cell), "workdir_exists": ctx.workdir.is_dir()})]


def _skip(ctx) -> list:
    raise Skip("probe: nothing to measure on this artifact")


def _boom(ctx) -> list:
    raise RuntimeError("probe exploded")


def _not_a_list(ctx):
    return {"answer": 42}


def _blank_flag(ctx) -> list:
    return [Measurement("answer", 1.0, "count", flag="  ")]


SUITES = {"probe-measure": _measure, "probe-look": _look, "probe-skip": _skip, "probe-boom": _boom,
          "probe-dict": _not_a_list, "probe-blank-flag": _blank_flag}


def _probe_plugin() -> types.ModuleType:
    plugin = types.ModuleType("probe_suites")

    @hookimpl
    def harness_register_suites(register):
        for name, run in SUITES.items():
            register(SuiteSpec(name=name, run=run, per_backend=False, description="worker test probe"))

    plugin.harness_register_suites = harness_register_suites
    return plugin


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One cache folder for the module, so the toy artifact is built once."""
    return tmp_path_factory.mktemp("worker-cache")


@pytest.fixture
def make_task(harness_host, monkeypatch, shared_cache, tmp_path):
    """``make(suite, **fields) -> CellTask`` on the toy cell, its host already loaded for the worker."""
    host = harness_host((toy.PLUGIN_NAME, toy), ("probe", _probe_plugin()), entry_points=False)
    key = f"in-process:{tmp_path}"  # a plugins_dir no other test names: the worker's cache finds this host
    monkeypatch.setitem(worker._HOSTS, key, host)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "not-the-run-cache"))  # run_cell sets it; restored after

    def make(suite: str, *, cache=None, method=toy.METHOD, dataset=toy.DATASET, **fields) -> CellTask:
        cell = {"model": {"name": toy.MODEL, "params": {}}, "dataset": {"name": dataset, "params": {}},
                "method": {"name": method, "params": {}}, "seed": 0, "backend": None, "verifier": None,
                "benchmark": False}
        identity = {"model": toy.MODEL, "dataset": dataset, "method": method, "seed": 0, "suite": suite}
        return CellTask(cell_key=f"key-{suite}", suite=suite, cell=cell, identity=identity,
                        artifact_group="group", settings=fields.pop("settings", {}),
                        cache_dir=str(cache or shared_cache), plugins_dir=key, timeout_s=60.0, **fields)

    return make


def test_an_ok_cell_returns_typed_measurements(make_task):
    stages = []
    task = make_task("probe-measure")
    result = worker.run_cell(task, report=stages.append)
    assert result.status == "ok", result.traceback
    assert result.cell_key == task.cell_key
    assert stages == ["dataset", "artifact", "suite", "claims"]
    answer, flagged, claims = result.measurements
    assert claims.metric == "check_claims" and claims.value == 1.0  # added to every cell of an artifact
    assert all(type(m) is Measurement for m in result.measurements)
    assert answer.value == 42.0 and type(answer.value) is float
    assert answer.samples == [1.0, 2.0, 3.0] and all(type(v) is float for v in answer.samples)
    assert (answer.metric, answer.unit, answer.params, answer.info) == ("answer", "count", {"batch_size": 1},
                                                                         {"why": "probe"})
    assert flagged.flag == "probe gate: too low"
    assert result.reason is None and result.error_type is None and result.traceback is None
    assert result.started_at is not None and result.duration_s > 0
    assert result.info["artifact_key"] == result.artifact_key
    assert set(result.info["artifact"]) == {"formats", "claims", "weights", "build_s"}
    # The result crosses a process boundary as its dict.
    assert CellResult.from_dict(result.to_dict()) == result


def test_the_tasks_cache_dir_is_the_one_used(make_task, tmp_path):
    run_cache = tmp_path / "run-cache"
    task = make_task("probe-look", cache=run_cache, baseline_key="dense-key",
                     baselines=[["top1", {}, 0.9], ["p50_ms", {"batch_size": 1}, 2.5]], settings={"n": 3})
    result = worker.run_cell(task)
    assert result.status == "ok", result.traceback
    seen = result.measurements[0].info
    assert seen["cache_dir"] == str(run_cache) == os.environ[CACHE_ENV]
    assert Path(seen["artifact_path"]).parent == run_cache / "artifacts"
    assert (run_cache / "artifacts" / seen["artifact_key"] / "artifact.json").is_file()
    assert seen["workdir_exists"]
    assert not any((run_cache / "scratch").iterdir())  # the cell's workdir is removed after the suite
    assert (seen["baseline_top1"], seen["baseline_p50"], seen["missing"]) == (0.9, 2.5, None)
    assert seen["is_baseline"] is False
    assert seen["settings"] == {"n": 3} and seen["cell"] == task.identity


def test_a_cell_without_a_baseline_key_is_the_baseline(make_task):
    result = worker.run_cell(make_task("probe-look"))
    assert result.measurements[0].info["is_baseline"] is True
    assert result.measurements[0].info["baseline_top1"] is None


def test_a_skip_becomes_skipped_with_the_reason(make_task):
    result = worker.run_cell(make_task("probe-skip"))
    assert result.status == "skipped"
    assert result.reason == "probe: nothing to measure on this artifact"
    assert result.measurements == [] and result.traceback is None and result.error_type is None
    assert not result.breaks_artifact


def test_an_exception_becomes_failed_with_type_and_traceback(make_task):
    result = worker.run_cell(make_task("probe-boom"))
    assert result.status == "failed"
    assert (result.stage, result.error_type) == ("suite", "RuntimeError")
    assert result.reason == "suite: RuntimeError: probe exploded"
    assert "Traceback (most recent call last)" in result.traceback
    assert "in _boom" in result.traceback and "probe exploded" in result.traceback
    assert result.measurements == [] and not result.breaks_artifact
    assert result.artifact_key is not None  # it got as far as the artifact


@pytest.mark.parametrize("suite, words", [("probe-dict", "run(ctx) returned dict"),
                                          ("probe-blank-flag", "flag of answer must be a non-empty reason")])
def test_malformed_measurements_fail_the_cell(make_task, suite, words):
    result = worker.run_cell(make_task(suite))
    assert result.status == "failed" and result.error_type == "TypeError" and result.stage == "suite"
    assert words in result.reason


def test_failures_say_where_they_happened(make_task):
    unknown_suite = worker.run_cell(make_task("no-such-suite"))
    assert (unknown_suite.status, unknown_suite.stage, unknown_suite.error_type) == ("failed", "setup", "UnknownName")
    assert "unknown suite 'no-such-suite'" in unknown_suite.reason

    data = worker.run_cell(make_task("probe-measure", dataset="no-such-data"))
    assert (data.stage, data.error_type) == ("dataset", "UnknownName") and data.breaks_artifact

    method = worker.run_cell(make_task("probe-measure", method="no-such-method"))
    assert method.stage == "artifact" and method.breaks_artifact
    assert "no-such-method" in method.reason


def test_build_only_stops_after_the_artifact(make_task):
    stages = []
    result = worker.run_cell(make_task("probe-boom", build_only=True), report=stages.append)
    assert result.status == "ok" and result.measurements == []  # the failing suite never ran
    assert stages == ["dataset", "artifact"]
    assert result.artifact_key is not None


def test_a_worker_loads_the_tasks_plugin_folder(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "folder_probe.py").write_text(textwrap.dedent("""
        from harness.api import Measurement, SuiteSpec, hookimpl
        from harness.devkit.toy import (harness_register_datasets, harness_register_methods,
                                        harness_register_models)

        @hookimpl
        def harness_register_suites(register):
            register(SuiteSpec(name="folder-probe", per_backend=False, description="from a plugin folder",
                               run=lambda ctx: [Measurement("rows", len(ctx.splits.test.y), "count")]))
    """))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.setattr(worker, "_HOSTS", {})  # a fresh process: nothing loaded yet
    cell = {"model": {"name": toy.MODEL, "params": {}}, "dataset": {"name": toy.DATASET, "params": {}},
            "method": {"name": toy.METHOD, "params": {}}, "seed": 0, "backend": None, "verifier": None,
            "benchmark": False}
    task = CellTask(cell_key="k", suite="folder-probe", cell=cell, identity={"suite": "folder-probe"},
                    artifact_group="g", settings={}, cache_dir=str(tmp_path / "cache"), plugins_dir=str(folder),
                    timeout_s=60.0)
    result = worker.run_cell(CellTask.from_dict(task.to_dict()))
    assert result.status == "ok", result.traceback
    assert [(m.metric, m.value) for m in result.measurements] == [("rows", float(toy.SIZES["test"])),
                                                                  ("check_claims", 1.0)]
    assert str(folder) in worker._HOSTS  # loaded once, reused by the run's other tasks
