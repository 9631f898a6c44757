"""torch-cuda on a machine without a GPU: configuration, graph-pool bookkeeping, explicit skips.

Tests that need a device skip without one; everything else runs on the CPU.
"""

import json
import sqlite3

import pytest

from harness.api import ParamError, Skip
from harness.api import validate_params as validate
from harness_plugins.backends.torch_cuda import TORCH_CUDA, GraphPool, TorchCudaSession, available

SUITE = """
name = "cuda"
[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 16 }]
methods = ["dense"]
backends = [{ name = "torch-cuda", dtype = ["fp32", "bf16"], mode = ["eager", "graph"] }, "onnxruntime-cpu"]
suites = ["latency"]
[settings.latency]
profile = "smoke"
min_time_s = 0.05
"""


def test_parameters_validate():
    params = validate(TORCH_CUDA.params, {"dtype": "bf16"})
    assert params == {"dtype": "bf16", "mode": "graph", "compile": "none", "tf32": False, "flush_l2": False,
                      "device": 0}
    with pytest.raises(ParamError, match="'fp8' is not one of"):
        validate(TORCH_CUDA.params, {"dtype": "fp8"})
    with pytest.raises(ParamError, match="compile"):
        validate(TORCH_CUDA.params, {"compile": "turbo"})


def test_graph_mode_with_a_graph_capturing_compile_is_an_explicit_skip():
    params = validate(TORCH_CUDA.params, {"mode": "graph", "compile": "reduce-overhead"})
    with pytest.raises(Skip, match="captures CUDA graphs itself"):
        TorchCudaSession(artifact=None, params=params)


def test_graph_pool_keeps_one_replay_and_static_output_per_input():
    import torch

    module = torch.nn.Linear(3, 2)
    inputs = [torch.full((1, 3), float(i)) for i in range(3)]
    replayed = []

    def eager_capture(fn):
        # A CPU stand-in for CUDA-graph capture: run once for the static output, and replay by
        # running again (the pool's bookkeeping is what is under test, not CUDA).
        out = fn()

        def replay(fn=fn):
            replayed.append(fn())

        return replay, out

    pool = GraphPool(module, inputs, eager_capture)
    assert len(pool) == 3
    for x, out in zip(inputs, pool.outputs):
        assert torch.equal(out, module(x))
    pool.block(5, 2)  # rotation starts at the offset and wraps around
    expected = [module(inputs[i % 3]) for i in range(2, 7)]
    assert all(torch.equal(a, b) for a, b in zip(replayed, expected))
    with pytest.raises(ValueError, match="at least one input"):
        GraphPool(module, [], eager_capture)


def test_graph_pool_timed_outputs_are_each_replays_static_output():
    """TEST01 in graph mode: replay each graph, copy its static output before the next replay reuses it."""
    import torch

    module = torch.nn.Linear(3, 2)
    inputs = [torch.full((1, 3), float(i)) for i in range(3)]
    shared = torch.zeros(1, 2)  # one static buffer for every graph: what a shared memory pool may do

    def shared_capture(fn):
        def replay(fn=fn):
            shared.copy_(fn().detach())

        replay()
        return replay, shared

    with torch.no_grad():
        outs = GraphPool(module, inputs, shared_capture).replayed_outputs()
        assert [o.tolist() for o in outs] == [module(x).tolist() for x in inputs]


def test_available_answers_with_a_reason():
    ok, reason = available()
    import torch

    if torch.cuda.is_available():
        assert ok and reason == ""
    else:
        assert not ok and "no CUDA device" in reason


def test_without_a_gpu_cells_are_recorded_skipped(harness_cli, suite_file, tmp_path):
    ok, _ = available()
    if ok:
        pytest.skip("this machine has a CUDA device: the cells run instead of being skipped")
    db = tmp_path / "c.db"
    proc = harness_cli("run", suite_file(SUITE), "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT backend, backend_params, status, reason FROM cells ORDER BY id").fetchall()
    cuda = [r for r in rows if r[0] == "torch-cuda"]
    assert len(cuda) == 4  # 2 dtypes x 2 modes, none silently dropped
    assert {json.loads(r[1])["dtype"] for r in cuda} == {"fp32", "bf16"}
    assert all(r[2] == "skipped" and "no CUDA device" in r[3] for r in cuda)
    assert [r[2] for r in rows if r[0] == "onnxruntime-cpu"] == ["ok"]


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_on_a_gpu_graph_replay_agrees_with_eager(tmp_path):
    import torch

    from harness.api import TimingPlan

    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
    art = tmp_path / "a"
    art.mkdir()
    torch.save(module, art / "module.pt")
    (art / "artifact.json").write_text(json.dumps({"key": "t", "formats": ["torch"], "input_shape": [8]}))
    from harness.api import Artifact

    params = validate(TORCH_CUDA.params, {"mode": "graph"})
    session = TorchCudaSession(Artifact.open(art), params)
    x = torch.randn(4, 8).numpy()
    result = session.time([x, x * 2], TimingPlan(warmup_iters=3, warmup_s=0.0, min_samples=5, min_time_s=0.0))
    assert len(result.samples_s) >= 5 and result.info["peak_device_bytes"] > 0
    assert abs(session.run(x) - module(torch.from_numpy(x)).detach().numpy()).max() < 1e-4
    timed = session.timed_outputs([x, x * 2])  # TEST01: the replayed graphs compute what run() does
    assert all(abs(t - session.run(b)).max() < 1e-4 for t, b in zip(timed, [x, x * 2]))
