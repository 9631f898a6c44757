"""int8-dynamic: an ONNX file with integer ops whose outputs track the float model."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness_plugins.quantization import INT8_DYNAMIC, INT8_STATIC


@pytest.mark.parametrize("per_channel", [False, True])
def test_int8_dynamic(per_channel, trained_lenet5, digits, apply_ctx, h):
    """ConvInteger and MatMulInteger replace the float ops; top-1 agrees with torch on digits test."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    ctx = apply_ctx(copy.deepcopy(trained_lenet5), h.defaults(INT8_DYNAMIC, per_channel=per_channel))
    out = INT8_DYNAMIC.apply(ctx)
    assert isinstance(out, Path) and out == ctx.workdir / "int8.onnx" and out.is_file()
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"ConvInteger", "MatMulInteger"} <= ops
    assert not ops & {"Conv", "Gemm", "MatMul"}

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: digits.test.x})[0]
    with torch.no_grad():
        ref = trained_lenet5(torch.from_numpy(digits.test.x)).numpy()
    # Loose: dynamic int8 moves logits by a few percent of their range.
    assert np.abs(got - ref).max() <= 0.1 * np.abs(ref).max()
    agree = float(np.mean(got.argmax(1) == ref.argmax(1)))
    top1 = float(np.mean(got.argmax(1) == digits.test.y))
    print(f"int8-dynamic per_channel={per_channel}: top-1 agreement {agree:.4f}, top-1 {top1:.4f}")
    assert agree >= 0.97 and top1 >= 0.9


def test_int8_spec():
    """ONNX only, with the promised claims and boolean parameters defaulting to False."""
    assert INT8_DYNAMIC.produces == ("onnx",)
    assert INT8_DYNAMIC.claims({"per_channel": False, "reduce_range": False}) == {
        "weight_bits": 8, "weight_dtype": "int8", "activation": "dynamic uint8"}
    assert {p.name: p.default for p in INT8_DYNAMIC.params} == {"per_channel": False, "reduce_range": False}


@pytest.mark.parametrize("model", ["lenet5", "mlp", "resnet-small"])
def test_int8_static_qdq(model, trained, digits, apply_ctx, h):
    """QDQ format: int8 weight initializers behind DequantizeLinear, activations quantized by
    QuantizeLinear with calibrated scales; top-1 agrees with torch."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    dense = trained(model)
    ctx = apply_ctx(copy.deepcopy(dense), h.defaults(INT8_STATIC))
    out = INT8_STATIC.apply(ctx)
    assert out == ctx.workdir / "int8-static.onnx" and out.is_file()
    graph = onnx.load(str(out)).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    weights = [numpy_helper.to_array(i) for i in graph.initializer if len(i.dims) >= 2]
    assert weights and all(w.dtype == np.int8 for w in weights)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: digits.test.x})[0].argmax(1)
    assert float(np.mean(got == h.predictions(dense, digits.test.x))) >= 0.97
    assert INT8_STATIC.claims(h.defaults(INT8_STATIC))["activation_bits"] == 8
