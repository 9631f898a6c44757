"""A stranger's benchmark folder through ``harness run`` of a ``[[verification]]`` table: its ``model.pt``
is loaded by the safe loader (a hostile one runs nothing and fails its cells with the file named)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from hostile import SystemPayload, payload_runs_under_plain_load, write_module_payload

from harness.core.safeload import UnsafeFile

SUITE = """
name = "stranger"
seeds = [0]

[[verification]]
benchmarks = [{ name = "folder", path = "bench" }]
methods = [{ name = "global-magnitude", sparsity = 0.5 }]
verifiers = ["ibp"]

[settings.verification]
timeout_s = 30
"""


def _folder(root, module):
    """A VNN-COMP layout folder: instances.csv, model.onnx, one property, data.pt and ``model.pt``."""
    import torch

    from harness.core.torchio import export_onnx
    from harness.verify.vnnlib import robustness

    bench = root / "bench"
    bench.mkdir()
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    export_onnx(net, bench / "model.onnx", (2,))
    (bench / "prop.vnnlib").write_text(robustness([0.0, 0.0], [0.1, 0.1], 0, 2).text())
    (bench / "instances.csv").write_text("model.onnx,prop.vnnlib,10\n")
    torch.save([(torch.zeros(2), 0, None)], bench / "data.pt")
    if module is None:
        torch.save(net, bench / "model.pt")
    else:
        module(bench / "model.pt")
    return bench


def _run(tmp_path):
    suite = tmp_path / "stranger.toml"
    suite.write_text(SUITE)
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", suite, "--db", tmp_path / "v.db", "-q"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    cells = []
    if (tmp_path / "v.db").exists():
        conn = sqlite3.connect(tmp_path / "v.db")
        cells = conn.execute("SELECT method, status, reason FROM cells").fetchall()
        conn.close()
    return proc, cells


def test_a_hostile_model_pt_in_a_benchmark_folder_is_refused_at_validation(tmp_path):
    marker = tmp_path / "marker"
    bench = _folder(tmp_path, lambda path: write_module_payload(path, marker, SystemPayload))
    assert payload_runs_under_plain_load(bench / "model.pt", marker)
    proc, cells = _run(tmp_path)
    assert not marker.exists()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and cells == []
    assert "verification[0].benchmarks[0].path" in proc.stderr and str(bench / "model.pt") in proc.stderr
    assert "system" in proc.stderr and "run code" in proc.stderr
    assert "model.onnx with method 'dense'" in proc.stderr  # what to provide instead


def test_a_model_pt_swapped_after_validation_is_refused_when_compressed(tmp_path):
    """The build step loads with the same policy: a file changed between validation and the cell runs nothing."""
    from harness.build.benchmarks import compress
    from harness.core.identity import Component
    from harness.plugin.manager import load_host
    from harness.plugin.params import validate
    from harness.verify.benchmarks import read_folder

    marker = tmp_path / "marker"
    bench = _folder(tmp_path, lambda path: write_module_payload(path, marker))
    registry = load_host().registry
    params = validate(registry.method("global-magnitude").params, {"sparsity": 0.5})
    with pytest.raises(UnsafeFile) as err:
        compress(read_folder(bench, tmp_path / "cache"), registry, Component("global-magnitude", params), 0,
                 tmp_path / "cache")
    assert not marker.exists()
    assert str(bench / "model.pt") in str(err.value) and "builtins.exec" in str(err.value)


def test_a_dense_only_table_does_not_need_the_torch_networks(tmp_path):
    """Without a method to apply, model.pt is never read: the shipped ONNX is verified as it is."""
    marker = tmp_path / "marker"
    _folder(tmp_path, lambda path: write_module_payload(path, marker))
    from harness.plan.suitefile import load_plan
    from harness.plugin.manager import load_host

    suite = tmp_path / "dense.toml"
    suite.write_text(SUITE.replace('[{ name = "global-magnitude", sparsity = 0.5 }]', '["dense"]'))
    plan = load_plan(suite, load_host().registry)
    assert plan.cells and not marker.exists()


@pytest.mark.slow
def test_a_plain_torch_model_pt_in_a_benchmark_folder_is_compressed(tmp_path):
    _folder(tmp_path, None)
    proc, cells = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cells and all(c[1] == "ok" for c in cells), cells
