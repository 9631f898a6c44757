"""Backends: sessions run artifacts, agree with each other, and time with the shared plan."""

from __future__ import annotations

import pytest

from harness.api import TimingPlan
from harness_plugins.backends.onnxruntime_cpu import ONNXRUNTIME_CPU
from harness_plugins.backends.torch_cpu import TORCH_CPU

FAST = TimingPlan(warmup_iters=2, warmup_s=0.0, min_samples=5, min_time_s=0.0)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, request):
    """An artifact with both formats, from a seeded lenet5."""
    import torch

    from harness.api import ModelContext
    from harness_plugins.models import LENET5

    h = request.getfixturevalue("h")
    torch.manual_seed(0)
    module = LENET5.build(ModelContext(params={}, input_shape=(1, 8, 8), num_classes=10, seed=0)).eval()
    return h.make_artifact(tmp_path_factory.mktemp("artifact"), module)


@pytest.fixture(scope="module")
def batches():
    """Three distinct batches of 4 digits-shaped inputs."""
    import numpy as np

    rng = np.random.default_rng(0)
    return [rng.random((4, 1, 8, 8), dtype=np.float32) for _ in range(3)]


@pytest.mark.parametrize("spec", [TORCH_CPU, ONNXRUNTIME_CPU], ids=lambda s: s.name)
def test_session_runs_and_times(spec, artifact, batches):
    """run() gives logits, bound calls give the same, and time() returns samples per the plan."""
    import numpy as np

    assert spec.available() == (True, "")
    params = {"threads": 1}
    sess = spec.session(artifact, params)
    try:
        out = sess.run(batches[0])
        assert isinstance(out, np.ndarray) and out.shape == (4, 10)
        assert np.array_equal(sess.bind(batches[0])(), out)
        result = sess.time(batches, FAST)
        assert len(result.samples_s) >= 5 and all(s > 0 for s in result.samples_s)
        assert result.inner_loops >= 1 and result.warmup_iters >= 2
        assert sess.info["threads"] == 1 and sess.info["runtime"] in ("torch", "onnxruntime")
    finally:
        sess.close()
    fp = spec.fingerprint(params)
    assert fp["threads"] == 1


def test_backends_agree(artifact, batches):
    """torch and onnxruntime compute the same function on the same artifact."""
    import numpy as np

    outs = []
    for spec in (TORCH_CPU, ONNXRUNTIME_CPU):
        sess = spec.session(artifact, {"threads": 1})
        outs.append(sess.run(batches[1]))
        sess.close()
    assert np.allclose(outs[0], outs[1], atol=1e-4, rtol=1e-4)


def test_torch_session_info_and_threads(artifact):
    """torch-cpu records how it runs, sets the thread count and restores it on close."""
    import torch

    before = torch.get_num_threads()
    sess = TORCH_CPU.session(artifact, {"threads": 2})
    assert torch.get_num_threads() == 2
    assert sess.info == {"runtime": "torch", "version": torch.__version__, "threads": 2, "mode": "eager",
                         "device": "cpu"}
    sess.close()
    assert torch.get_num_threads() == before
    assert set(TORCH_CPU.fingerprint({"threads": 2})) == {"torch", "threads", "mkldnn"}


def test_ort_session_info(artifact):
    """onnxruntime-cpu records runtime, version, threads, provider and optimisation level."""
    import onnxruntime as ort

    sess = ONNXRUNTIME_CPU.session(artifact, {"threads": 1})
    assert sess.info == {"runtime": "onnxruntime", "version": ort.__version__, "threads": 1,
                         "provider": "CPUExecutionProvider", "graph_optimization": "all"}
    sess.close()


def test_ort_runs_onnx_only_artifact(artifact, tmp_path, h, batches):
    """An ONNX-only artifact (as int8-dynamic yields) runs on onnxruntime; torch-cpu cannot open it."""
    onnx_only = h.make_artifact(tmp_path / "onnx-only", onnx_file=artifact.file("onnx"))
    assert onnx_only.formats == ("onnx",)
    sess = ONNXRUNTIME_CPU.session(onnx_only, {"threads": 1})
    assert sess.run(batches[2]).shape == (4, 10)
    sess.close()
    with pytest.raises(KeyError):
        TORCH_CPU.session(onnx_only, {"threads": 1})


def test_accepts():
    """Each backend accepts the format it runs."""
    assert TORCH_CPU.accepts == ("torch",) and ONNXRUNTIME_CPU.accepts == ("onnx",)
