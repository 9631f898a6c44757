"""A stranger's benchmark folder through ``harness run`` of a ``[[verification]]`` table: its ``model.pt``
is loaded by the safe loader (a hostile one runs nothing and fails its cells with the file named)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from hostile import SystemPayload, payload_runs_under_plain_load, write_module_payload

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
    conn = sqlite3.connect(tmp_path / "v.db")
    cells = conn.execute("SELECT method, status, reason FROM cells").fetchall()
    conn.close()
    return proc, cells


def test_a_hostile_model_pt_in_a_benchmark_folder_runs_nothing_and_is_named(tmp_path):
    marker = tmp_path / "marker"
    bench = _folder(tmp_path, lambda path: write_module_payload(path, marker, SystemPayload))
    assert payload_runs_under_plain_load(bench / "model.pt", marker)
    proc, cells = _run(tmp_path)
    assert not marker.exists()
    assert proc.returncode == 1, proc.stderr
    failed = [c for c in cells if c[1] == "failed"]
    assert failed, cells
    for _, _, reason in failed:
        assert str(bench / "model.pt") in reason and "refused" in reason, reason
        assert "model.onnx with method 'dense'" in reason  # what to provide instead


@pytest.mark.slow
def test_a_plain_torch_model_pt_in_a_benchmark_folder_is_compressed(tmp_path):
    _folder(tmp_path, None)
    proc, cells = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cells and all(c[1] == "ok" for c in cells), cells
