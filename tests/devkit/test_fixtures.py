"""The fixtures harness.testing offers plugin authors behave as documented (docs/testing.md)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.devkit import toy
from harness.plugin.manager import HOOKS, PluginError


def test_plugin_manager_is_fresh_and_empty(plugin_manager):
    assert plugin_manager.get_plugins() == set()
    for hook in HOOKS.values():
        assert getattr(plugin_manager.hook, hook).spec is not None


def test_harness_plugin_registers_an_installed_module_once(harness_plugin):
    host = harness_plugin("harness_plugins.pruning")
    info = host.registry.plugins["pruning"]
    assert info.source == "extra"  # registered by the fixture, the installed entry point left out
    assert host.registry.get("method", "random").plugin is info
    assert "models" in host.registry.plugins  # the other installed plugins are there


def test_harness_plugin_without_entry_points(harness_plugin):
    host = harness_plugin(toy, entry_points=False)
    assert host.registry.names("method") == ["dense", toy.METHOD]  # dense is built in
    assert toy.__name__ in host.registry.plugins


def test_harness_plugin_surfaces_registration_errors(harness_plugin):
    from harness.api import MethodSpec, hookimpl

    class Clash:
        @staticmethod
        @hookimpl
        def harness_register_methods(register):
            register(MethodSpec(name="dense", apply=lambda ctx: ctx.module))

    with pytest.raises(PluginError, match="method 'dense' is registered twice"):
        harness_plugin(Clash, "clash")


def test_harness_plugin_unregisters_at_teardown(pytester):
    pytester.makeconftest('pytest_plugins = ["harness.testing"]')
    pytester.makepyfile("""
        from harness.api import MethodSpec, hookimpl

        HOSTS = []

        class Mine:
            @staticmethod
            @hookimpl
            def harness_register_methods(register):
                register(MethodSpec(name="mine", apply=lambda ctx: ctx.module))

        def test_registered(harness_plugin):
            host = harness_plugin(Mine, "mine-plugin", entry_points=False)
            HOSTS.append(host)
            assert host.pm.get_plugin("mine-plugin") is Mine
            assert host.registry.names("method") == ["dense", "mine"]

        def test_unregistered_after_the_test():
            assert HOSTS[0].pm.get_plugin("mine-plugin") is None
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_toy_splits(toy_splits):
    assert toy_splits.input_shape == toy.INPUT_SHAPE and toy_splits.num_classes == toy.NUM_CLASSES
    assert [len(toy_splits.train), len(toy_splits.calibration), len(toy_splits.test)] == [128, 32, 64]
    assert toy_splits.test.x.dtype == np.float32 and toy_splits.test.y.dtype == np.int64
    assert toy.load_blobs().fingerprint == toy_splits.fingerprint


def test_toy_model_is_seeded_and_learns(toy_model, toy_splits):
    import torch

    a, b = toy_model(trained=False), toy_model(trained=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    trained = toy_model()
    with torch.no_grad():
        pred = trained(torch.from_numpy(toy_splits.test.x)).argmax(1).numpy()
    assert (pred == toy_splits.test.y).mean() > 0.9  # chance is 0.25


def test_toy_apply_context(toy_apply_context, toy_splits):
    ctx = toy_apply_context({"sparsity": 0.5}, seed=3)
    assert ctx.params == {"sparsity": 0.5} and ctx.seed == 3 and ctx.splits is toy_splits
    assert ctx.workdir.is_dir() and not any(ctx.workdir.iterdir())
    assert toy_apply_context({}).workdir != ctx.workdir
    path = ctx.export_onnx(ctx.module, ctx.workdir / "m.onnx")
    assert path.is_file()


def test_toy_artifact_runs_in_both_formats(toy_artifact, toy_splits):
    from harness.measure.reference import ReferenceSession, compare_outputs

    assert set(toy_artifact.formats) == {"torch", "onnx"}
    x = toy_splits.test.x[:9]
    ort_out = ReferenceSession(toy_artifact, "onnxruntime").run(x)
    torch_out = ReferenceSession(toy_artifact, "torch").run(x)
    assert compare_outputs(ort_out, torch_out)["ok"]
    assert toy_artifact.manifest["identity"]["method"]["name"] == toy.METHOD


def test_toy_vnnlib_answers_are_known(toy_vnnlib):
    from harness.verify.vnnlib import load

    violated, holds = load(toy_vnnlib.violated), load(toy_vnnlib.holds)
    corner = [1.0, -1.0, 1.0, 1.0]
    y = toy_vnnlib.run(corner)
    assert y == pytest.approx([5.25, -0.1], abs=1e-6)
    assert violated.is_unsafe(y)
    assert not holds.is_unsafe(y)  # 5.25 is the largest Y_0 in the box; holds needs Y_0 >= 6


def test_conformance_fixture_checks_a_module(conformance):
    report = conformance(toy, isolate=False)
    assert report.ok, report.text()
    subjects = {r.subject for r in report.results}
    assert {f"model {toy.MODEL}", f"dataset {toy.DATASET}", f"method {toy.METHOD}"} <= subjects


def test_memory_store_is_migrated(memory_store):
    tables = set(memory_store.db.table_names())
    assert {"runs", "cells", "measurements", "sample_sets", "metrics"} <= tables
    assert {"results", "latest_cells", "latest_results"} <= set(memory_store.db.view_names())
