"""Session.timed_outputs (MLPerf's TEST01): the outputs of the very call a backend times, in-process,
through the runner protocol's ``outputs`` request, and inside Node.js for the wasm backend."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from harness.api import RunnerSession, TimingPlan, runner_files
from harness.measure.timing import InProcessSession

FAST = TimingPlan(warmup_iters=3, warmup_s=0.0, min_samples=5, min_time_s=0.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small CNN in ONNX, its bytes and onnxruntime's answers on a few batches."""
    import onnxruntime as ort
    import torch

    from harness.api import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(256, 10))
    path = export_onnx(net, tmp_path_factory.mktemp("m") / "m.onnx", (1, 8, 8))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batches = [np.random.default_rng(i).random((n, 1, 8, 8), dtype=np.float32) for i, n in enumerate((1, 3, 2))]
    expected = [sess.run(None, {sess.get_inputs()[0].name: b})[0] for b in batches]
    return path, batches, expected


class Counting(InProcessSession):
    """Counts the bound calls it makes, so the test sees that timed_outputs runs the timed call."""

    def __init__(self):
        self.calls = 0
        self.info = {}

    def bind(self, x):
        def call():
            self.calls += 1
            return np.asarray(x).sum(axis=(1, 2, 3))
        return call


def test_in_process_sessions_return_their_bound_calls_outputs(model):
    _, batches, _ = model
    session = Counting()
    outs = session.timed_outputs(batches)
    assert session.calls == len(batches)
    for out, b in zip(outs, batches):
        np.testing.assert_array_equal(out, b.sum(axis=(1, 2, 3)))


def check_runner(session, batches, expected):
    try:
        session.time(batches, FAST)  # the timing path first, as the audit runs it
        for out, exp, b in zip(session.timed_outputs(batches), expected, batches):
            assert out.shape == exp.shape
            np.testing.assert_allclose(out, exp, atol=1e-5)
            np.testing.assert_array_equal(out, session.run(b))
    finally:
        session.close()


def test_python_runner_answers_outputs_with_its_timed_call(model):
    path, batches, expected = model
    check_runner(RunnerSession([sys.executable, runner_files()["onnx_runner.py"]], path.read_bytes(), 1),
                 batches, expected)


def test_wasm_runner_answers_outputs_inside_node(model, tmp_path):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    from harness_plugins.backends import wasm

    path, batches, expected = model
    where = wasm.ensure_installed(tmp_path)
    check_runner(RunnerSession(["node", str(where / "runner.mjs")], path.read_bytes(), 1, cwd=str(where)),
                 batches, expected)
