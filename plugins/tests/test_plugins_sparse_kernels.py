"""torch-sparse-cpu and matmul-nbits: compression in the kernels, with outputs that still match."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.api import TimingPlan, check_timed_call
from harness_plugins.backends.torch_sparse import TORCH_SPARSE_CPU, choose_layout, sparsify
from harness_plugins.nbits import MATMUL_NBITS, gemm_to_matmul

FAST = TimingPlan(warmup_iters=2, warmup_s=0.0, min_samples=5, min_time_s=0.0)


def _pruned(module, share, seed=0):
    """``module`` with ``share`` of each conv/linear weight set to zero at random."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight[torch.rand(m.weight.shape, generator=g) < share] = 0
    return module.eval()


def test_sparsify_converts_linear_and_conv_and_keeps_outputs():
    """Linear and ungrouped Conv2d go to CSR and give the dense outputs; depthwise and too-dense layers stay."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
                        nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 10))
    _pruned(net, 0.8)
    with torch.no_grad():
        net[6].weight.copy_(torch.randn(10, 16))  # dense: below min_sparsity
    x = torch.randn(5, 3, 16, 16)
    ref = net(x).detach()
    converted = copy.deepcopy(net)
    report = sparsify(converted, 0.5)
    assert report["sparse"] == {"0": "csr", "4": "csr"}
    assert set(report["dense"]) == {"2", "6"} and "depthwise" in report["dense"]["2"]
    assert type(converted[0]).__name__ == "SparseConv2d" and type(converted[4]).__name__ == "SparseLinear"
    assert isinstance(converted[6], nn.Linear)
    with torch.inference_mode():
        assert torch.allclose(converted(x), ref, atol=1e-5, rtol=1e-4)


def test_bsr_for_square_blocks():
    """A claimed square block shape that tiles the weight runs as BSR with that block, and is exact."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32))
    keep = (torch.rand(8, 16) > 0.7).float().repeat_interleave(4, 0).repeat_interleave(4, 1)
    with torch.no_grad():
        net[0].weight.mul_(keep)
    x = torch.randn(3, 64)
    ref = net(x).detach()
    report = sparsify(net, 0.5, "auto", [4, 4])
    assert report["sparse"] == {"0": "bsr 4x4"}
    assert net[0].weight_sparse.layout == torch.sparse_bsr
    with torch.inference_mode():
        assert torch.allclose(net(x), ref, atol=1e-5, rtol=1e-4)


def test_layout_choice():
    """BSR only for square blocks that tile; 'bsr' refuses otherwise, naming why."""
    assert choose_layout("auto", (64, 32), [4, 4]) == ("bsr", 4)
    assert choose_layout("auto", (64, 32), [4, 1]) == ("csr", None)
    assert choose_layout("auto", (66, 32), [4, 4]) == ("csr", None)
    assert choose_layout("csr", (64, 32), [4, 4]) == ("csr", None)
    with pytest.raises(ValueError, match="square block_shape"):
        choose_layout("bsr", (64, 32), [4, 1])


def test_session_matches_reference_under_timing(tmp_path, h):
    """The session's timed call equals the dense module's outputs (TEST01), and it times like the others."""
    import numpy as np
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = _pruned(nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)), 0.9)
    art = h.make_artifact(tmp_path / "a", net, export=False, claims={"sparsity": 0.9})
    rng = np.random.default_rng(0)
    batches = [rng.random((4, 1, 8, 8), dtype=np.float32) for _ in range(3)]
    with torch.no_grad():
        ref = [net(torch.from_numpy(b)).numpy() for b in batches]
    sess = TORCH_SPARSE_CPU.session(art, h.defaults(TORCH_SPARSE_CPU))
    try:
        assert sess.info["sparse_layers"] == 2 and sess.info["sparse_kinds"] == ["csr"]
        check = check_timed_call(sess, batches, ref, "fp32")
        assert check.ok is True, check.message
        result = sess.time(batches, FAST)
        assert len(result.samples_s) >= 5
    finally:
        sess.close()


def test_gemm_to_matmul_is_the_same_function(tmp_path, h):
    """Rewriting Gemm as MatMul + Add leaves the outputs as they were."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    path = h.export_onnx(net, tmp_path / "fp32.onnx")
    model = onnx.load(str(path))
    assert gemm_to_matmul(model) == 2
    assert "Gemm" not in {n.op_type for n in model.graph.node}
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    dense = ort.InferenceSession(str(path))
    a = dense.run(None, {dense.get_inputs()[0].name: x})[0]
    out = tmp_path / "mm.onnx"
    onnx.save(model, str(out))
    s = ort.InferenceSession(str(out))
    b = s.run(None, {s.get_inputs()[0].name: x})[0]
    assert np.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("bits,algorithm", [(4, "default"), (8, "default"), (4, "rtn"), (4, "hqq"), (4, "gptq")])
def test_matmul_nbits_packs_weights(bits, algorithm, apply_ctx, h, digits):
    """MatMulNBits replaces the linear layers, the file shrinks to about bits/32 of fp32, logits stay close,
    and the claims hold on the file."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from torch import nn

    from harness.api import check_artifact

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, 10)).eval()
    ctx = apply_ctx(copy.deepcopy(net), h.defaults(MATMUL_NBITS, bits=bits, algorithm=algorithm))
    out = MATMUL_NBITS.apply(ctx)
    assert isinstance(out, Path) and out.is_file()
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("MatMulNBits") == 3 and "Gemm" not in ops and "MatMul" not in ops
    fp32 = ctx.workdir / "fp32.onnx"
    ratio = out.stat().st_size / fp32.stat().st_size
    # HQQ keeps a float zero point per block beside each scale: a little more than the others.
    assert ratio < (0.35 if bits == 8 else 0.25 if algorithm == "hqq" else 0.2), ratio
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: digits.test.x})[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(digits.test.x)).numpy()
    assert np.abs(got - ref).max() <= (0.25 if bits == 4 else 0.02) * np.abs(ref).max()
    art = h.make_artifact(ctx.workdir / "art", onnx_file=out, claims=MATMUL_NBITS.claims(ctx.params))
    report = check_artifact(art)
    assert report.ok and {c.claim for c in report.checks} >= {"weight_bits", "weight_dtype"}, report


def test_matmul_nbits_refuses_what_onnxruntime_cannot(apply_ctx, h):
    """RTN at 8 bits would silently write 4-bit codes in onnxruntime 1.32: refused, naming why."""
    from torch import nn

    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    with pytest.raises(ValueError, match="rtn"):
        MATMUL_NBITS.apply(apply_ctx(net, h.defaults(MATMUL_NBITS, bits=8, algorithm="rtn")))


@pytest.mark.parametrize("bits", [4, 8])
def test_matmul_nbits_runs_in_onnxruntime_web(bits, apply_ctx, h):
    """onnxruntime-web's wasm build has the MatMulNBits kernel: the packed file runs in Node and agrees
    with native onnxruntime (skipped without node and npm, a failure under CI)."""
    import os
    import shutil

    import numpy as np
    import onnxruntime as ort
    from torch import nn

    from harness.api import RunnerSession
    from harness_plugins.backends.wasm import ensure_installed

    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must exercise this: node and npm are not on PATH")
        pytest.skip("node and npm are not on PATH")
    import torch

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    out = MATMUL_NBITS.apply(apply_ctx(net, h.defaults(MATMUL_NBITS, bits=bits)))
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    native = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ref = native.run(None, {native.get_inputs()[0].name: x})[0]
    where = ensure_installed()
    session = RunnerSession(["node", str(where / "runner.mjs")], out.read_bytes(), 1, cwd=str(where))
    try:
        got = session.run(x)
    finally:
        session.close()
    assert np.allclose(got, ref, atol=1e-5, rtol=1e-4)
