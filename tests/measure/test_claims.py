"""The claims checker (:mod:`harness.measure.claims`) and its weight readers (:mod:`harness.measure.weights`).

Every test builds a small real artifact in ``tmp_path`` (a saved torch module, a hand-written ONNX
file, an ``artifact.json`` manifest) whose sparsity, patterns, levels or ranks are known exactly, and
checks that a true claim passes, a false one fails with the claim and the measured value, and a claim
without a check is reported unchecked, never passed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.measure.claims import check_artifact, check_claims
from harness.measure.weights import OnnxReader, Tensor, TorchReader
from harness.plugin.specs import Artifact

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def make_artifact(tmp_path, claims: dict, *, module=None, model=None, analysis=None) -> Artifact:
    """An artifact folder with ``module`` (torch) and/or ``model`` (ONNX) and these claims."""
    folder = tmp_path / "artifact"
    folder.mkdir(exist_ok=True)
    formats = []
    if module is not None:
        torch.save(module, folder / "module.pt")
        formats.append("torch")
    if model is not None:
        onnx.save(model, str(folder / "model.onnx"))
        formats.append("onnx")
    manifest = {"key": "k" * 24, "formats": formats, "claims": claims, "input_shape": [8]}
    if analysis is not None:
        manifest["analysis"] = analysis
    (folder / "artifact.json").write_text(json.dumps(manifest))
    return Artifact.open(folder)


def linear(weight, bias: bool = True) -> torch.nn.Linear:
    """A Linear layer holding exactly ``weight`` (out x in) and a bias of ones (never zero)."""
    w = torch.as_tensor(np.asarray(weight, dtype=np.float32))
    layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias:
            layer.bias.fill_(1.0)
    return layer


def mlp(*weights) -> torch.nn.Sequential:
    """Linear layers with ReLUs between: module names ``0``, ``2``, ``4``..."""
    layers: list[torch.nn.Module] = []
    for i, w in enumerate(weights):
        if i:
            layers.append(torch.nn.ReLU())
        layers.append(linear(w))
    return torch.nn.Sequential(*layers)


def half_zero(rows: int, cols: int) -> np.ndarray:
    """A weight whose first half of each row is zero and the rest distinct non-zeros."""
    w = np.arange(1, rows * cols + 1, dtype=np.float32).reshape(rows, cols)
    w[:, : cols // 2] = 0
    return w


def only(report, claim: str, fmt: str = "torch"):
    """The single check of ``claim`` on ``fmt``."""
    checks = [c for c in report.of(claim) if c.format == fmt]
    assert len(checks) == 1, report.checks
    return checks[0]


# ------------------------------------------------------------------ sparsity


def test_sparsity_true_claim_passes_with_the_measured_share(tmp_path):
    module = mlp(half_zero(8, 8), half_zero(4, 8))  # 32 + 16 zeros of 96 weights; biases are ones
    report = check_artifact(make_artifact(tmp_path, {"sparsity": 0.5}, module=module))
    check = only(report, "sparsity")
    assert check.ok and report.ok
    assert check.measured == pytest.approx(0.5)
    assert check.detail == "over weights"
    assert report.unchecked == {}


def test_sparsity_false_claim_fails_naming_claim_and_measured_value(tmp_path):
    module = mlp(half_zero(8, 8), half_zero(4, 8))
    report = check_artifact(make_artifact(tmp_path, {"sparsity": 0.3}, module=module))
    assert not report.ok
    [failure] = report.failures()
    assert failure.claim == "sparsity" and failure.claimed == 0.3
    assert failure.measured == pytest.approx(0.5)
    assert failure.as_dict()["measured"] == pytest.approx(0.5)


def test_sparsity_tolerance_is_half_a_weight_per_layer_for_small_layers(tmp_path):
    module = mlp(half_zero(8, 8), half_zero(4, 8))  # 2 layers, 96 weights: tolerance 1/96 > 0.5 points
    near = check_artifact(make_artifact(tmp_path, {"sparsity": 0.51}, module=module))
    assert only(near, "sparsity").ok
    assert only(near, "sparsity").tolerance == pytest.approx(1 / 96)
    far = check_claims({"sparsity": 0.52}, [TorchReader(module)])
    assert not far.ok


def test_sparsity_scope_all_parameters_counts_biases(tmp_path):
    module = mlp(half_zero(8, 8), half_zero(4, 8))  # 48 zeros of 96 weights + 12 non-zero biases
    report = check_claims({"sparsity": 0.5, "sparsity_scope": "all parameters"}, [TorchReader(module)])
    check = only(report, "sparsity")
    assert check.measured == pytest.approx(48 / 108, abs=1e-6)
    assert not check.ok
    assert "all parameters" in check.detail


def test_unknown_sparsity_scope_is_unchecked_not_passed():
    module = mlp(half_zero(4, 4))
    report = check_claims({"sparsity": 0.5, "sparsity_scope": "attention heads"}, [TorchReader(module)])
    assert report.of("sparsity") == []
    assert "attention heads" in report.unchecked["sparsity"]


def test_layer_sparsity_is_checked_per_layer():
    module = mlp(half_zero(8, 8), np.ones((4, 8)))
    report = check_claims({"layer_sparsity": {"0": 0.5, "2": 0.5}}, [TorchReader(module)])
    by_layer = {c.claim: c for c in report.checks}
    assert set(by_layer) == {"layer_sparsity[0]", "layer_sparsity[2]"}
    assert by_layer["layer_sparsity[0]"].ok
    bad = by_layer["layer_sparsity[2]"]
    assert not bad.ok and bad.measured == 0.0 and "layer 2" in bad.detail
    assert [c.claim for c in report.failures()] == ["layer_sparsity[2]"]


# ------------------------------------------------------------------ unchecked claims


def test_claim_without_a_check_is_unchecked_never_passed():
    module = mlp(half_zero(4, 4))
    report = check_claims({"sparsity": 0.5, "latency_speedup": 2.0}, [TorchReader(module)])
    assert "latency_speedup" in report.unchecked
    assert "no check for this claim" in report.unchecked["latency_speedup"]
    assert report.of("latency_speedup") == []
    assert [c.claim for c in report.checks] == ["sparsity"]


def test_qualifiers_are_read_with_their_claim_not_reported():
    module = mlp(half_zero(4, 4))
    report = check_claims({"weight_bits": 8, "granularity": "per-channel", "symmetric": False},
                          [TorchReader(module)])
    assert report.unchecked == {}
    # "structured" qualifies only channel_sparsity; alone it is a claim nothing measures.
    alone = check_claims({"structured": True}, [TorchReader(module)])
    assert "structured" in alone.unchecked and alone.checks == []


def test_an_unreadable_claim_fails_with_the_reason():
    report = check_claims({"n_m": "two:four"}, [TorchReader(mlp(half_zero(4, 4)))])
    failure = only(report, "n_m")
    assert not failure.ok and failure.measured is None
    assert failure.detail.startswith("cannot read the claim")


# ------------------------------------------------------------------ channels


def test_channel_sparsity_counts_all_zero_output_rows():
    w = np.ones((8, 8), dtype=np.float32)
    w[:4] = 0  # 4 of layer 0's 8 rows; layer 2's 4 rows are whole: 4 of 12
    module = mlp(w, np.ones((4, 8)))
    ok = check_claims({"channel_sparsity": 1 / 3}, [TorchReader(module)])
    assert only(ok, "channel_sparsity").ok
    assert only(ok, "channel_sparsity").measured == pytest.approx(1 / 3, abs=1e-6)
    bad = check_claims({"channel_sparsity": 0.0}, [TorchReader(module)])
    assert not only(bad, "channel_sparsity").ok


def test_structured_channel_sparsity_compares_with_the_dense_model(tmp_path):
    # Dense: 8 -> 8 -> 4 -> 3; pruned keeps 4 and 2 channels; the classifier (layer 4) stays whole.
    module = mlp(np.ones((4, 8)), np.ones((2, 4)), np.ones((3, 2)))
    reference = {"0": 8, "2": 4, "4": 3}
    art = make_artifact(tmp_path, {"channel_sparsity": 0.5, "structured": True}, module=module,
                        analysis={"reference_out_channels": reference})
    report = check_artifact(art)
    check = only(report, "channel_sparsity")
    assert check.ok and check.measured == pytest.approx(0.5)
    assert report.unchecked == {}

    wrong = check_claims({"channel_sparsity": 0.25, "structured": True}, [TorchReader(module)], reference)
    failure = only(wrong, "channel_sparsity")
    assert not failure.ok and failure.measured == pytest.approx(0.5)
    assert "0 kept 4 of 8" in failure.detail


def test_structured_channel_sparsity_without_a_dense_reference_is_unchecked():
    module = mlp(np.ones((4, 8)), np.ones((3, 4)))
    report = check_claims({"channel_sparsity": 0.5, "structured": True}, [TorchReader(module)], None)
    assert report.checks == []
    assert "channel_sparsity" in report.unchecked


# ------------------------------------------------------------------ patterns


def two_of_four(rows: int, cols: int) -> np.ndarray:
    """Every group of 4 consecutive inputs holds exactly 2 non-zeros."""
    w = np.arange(1, rows * cols + 1, dtype=np.float32).reshape(rows, cols)
    w[:, 0::4] = 0
    w[:, 2::4] = 0
    return w


def test_n_m_pattern_holds_and_a_third_non_zero_breaks_it():
    good = mlp(two_of_four(4, 8), two_of_four(2, 4))
    report = check_claims({"n_m": "2:4"}, [TorchReader(good)])
    assert only(report, "n_m").ok
    assert only(report, "n_m").measured == "at most 2 of 4"

    w = two_of_four(2, 4)
    w[1, 0] = 5.0  # three non-zeros in layer 2's second row
    bad = check_claims({"n_m": "2:4"}, [TorchReader(mlp(two_of_four(4, 8), w))])
    failure = only(bad, "n_m")
    assert not failure.ok and failure.measured == "at most 3 of 4"
    assert "(layer 2)" in failure.detail


def test_n_m_with_no_layer_that_fits_fails():
    report = check_claims({"n_m": "2:4"}, [TorchReader(mlp(np.ones((3, 6))))])  # 6 inputs: no groups of 4
    failure = only(report, "n_m")
    assert not failure.ok and failure.measured is None
    assert failure.detail.startswith("0 layers fit")


def test_block_shape_whole_tiles_pass_a_partial_tile_fails():
    w = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
    w[0:2, 2:4] = 0
    w[2:4, 0:2] = 0
    report = check_claims({"block_shape": [2, 2]}, [TorchReader(mlp(w))])
    check = only(report, "block_shape")
    assert check.ok and check.measured == "0 of 4 tiles partly zero"

    w[0, 0] = 0  # a stray zero in the top-left tile
    bad = only(check_claims({"block_shape": [2, 2]}, [TorchReader(mlp(w))]), "block_shape")
    assert not bad.ok and bad.measured == "1 of 4 tiles partly zero"
    assert "first in layer 0" in bad.detail


def test_comparison_group_output_row():
    w = np.ones((4, 4), dtype=np.float32)
    w[np.arange(4), np.arange(4)] = 0  # one zero in every row
    assert only(check_claims({"comparison_group": "output row"}, [TorchReader(mlp(w))]), "comparison_group").ok
    w[0, 1:3] = 0  # row 0 now prunes three, the others one
    bad = only(check_claims({"comparison_group": "output row"}, [TorchReader(mlp(w))]), "comparison_group")
    assert not bad.ok and bad.measured == "rows differ by up to 2 zeros"
    other = check_claims({"comparison_group": "layer"}, [TorchReader(mlp(w))])
    assert other.checks == [] and "only 'output row'" in other.unchecked["comparison_group"]


# ------------------------------------------------------------------ quantization levels


def levels(rows: int, cols: int, per_row: int, offset_rows: bool = False) -> np.ndarray:
    """Each row cycles through ``per_row`` distinct values (row-specific ones with ``offset_rows``)."""
    w = np.zeros((rows, cols), dtype=np.float32)
    for r in range(rows):
        w[r] = (np.arange(cols) % per_row) + (10 * r if offset_rows else 0) + 1
    return w


def test_weight_bits_per_channel_levels():
    module = mlp(levels(4, 8, 4), levels(2, 4, 3))
    ok = only(check_claims({"weight_bits": 2}, [TorchReader(module)]), "weight_bits")
    assert ok.ok and ok.measured == 4

    bad = only(check_claims({"weight_bits": 2}, [TorchReader(mlp(levels(4, 8, 5)))]), "weight_bits")
    assert not bad.ok and bad.measured == 5
    assert "more than 2**2 = 4" in bad.detail


def test_weight_bits_granularity_per_tensor_counts_the_whole_tensor():
    module = mlp(levels(4, 8, 4, offset_rows=True))  # 4 values per row, 16 over the tensor
    assert only(check_claims({"weight_bits": 2}, [TorchReader(module)]), "weight_bits").ok
    tensor = only(check_claims({"weight_bits": 2, "granularity": "per-tensor"}, [TorchReader(module)]),
                  "weight_bits")
    assert not tensor.ok and tensor.measured == 16


def test_weight_bits_max_levels_per_channel():
    module = mlp(levels(4, 8, 3))
    report = check_claims({"weight_bits": 2, "max_levels_per_channel": 2}, [TorchReader(module)])
    failure = only(report, "weight_bits")
    assert not failure.ok and failure.measured == 3 and "more than 2 levels" in failure.detail


def test_weight_bits_symmetric_grid():
    on_grid = np.array([[-0.5, 0.0, 0.5, 0.5], [0.25, -0.25, 0.0, 0.25]], dtype=np.float32)  # +-1 level of a scale
    report = check_claims({"weight_bits": 2, "symmetric": True}, [TorchReader(mlp(on_grid))])
    assert only(report, "weight_bits").ok
    off_grid = np.array([[0.0, 0.5, 1.0, 1.0], [0.0, 0.5, 1.0, 0.0]], dtype=np.float32)  # 3 levels one side
    bad = only(check_claims({"weight_bits": 2, "symmetric": True}, [TorchReader(mlp(off_grid))]), "weight_bits")
    assert not bad.ok and "symmetric 2-bit grid" in bad.detail
    # The same values without the symmetry qualifier fit in 2 bits.
    assert only(check_claims({"weight_bits": 2}, [TorchReader(mlp(off_grid))]), "weight_bits").ok


def test_weight_bits_mean_max_weighs_each_tensor_by_its_size():
    module = mlp(levels(4, 4, 4), levels(2, 4, 2))  # 16 weights at 2 bits, 8 at 1 bit: 40/24
    ok = only(check_claims({"weight_bits_mean_max": 2}, [TorchReader(module)]), "weight_bits_mean_max")
    assert ok.ok and ok.measured == pytest.approx(40 / 24, abs=1e-4)
    bad = only(check_claims({"weight_bits_mean_max": 1.5}, [TorchReader(module)]), "weight_bits_mean_max")
    assert not bad.ok and bad.measured == pytest.approx(40 / 24, abs=1e-4)
    off = only(check_claims({"weight_bits_mean_max": 2, "weight_bits_choices": [1]}, [TorchReader(module)]),
               "weight_bits_mean_max")
    assert not off.ok and "0: 2 bits" in off.detail


# ------------------------------------------------------------------ factored layers


def factored(rank: int) -> torch.nn.Sequential:
    """8 -> (8 x rank, rank x 8) -> 4: one factored layer named ``0``."""
    return torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(8, rank, bias=False),
                                                   torch.nn.Linear(rank, 8)),
                               torch.nn.ReLU(), torch.nn.Linear(8, 4))


def test_max_rank_of_factored_layers(tmp_path):
    report = check_artifact(make_artifact(tmp_path, {"max_rank": 2}, module=factored(2)))
    check = only(report, "max_rank")
    assert check.ok and check.measured == 2
    bad = only(check_claims({"max_rank": 1}, [TorchReader(factored(2))]), "max_rank")
    assert not bad.ok and bad.measured == 2 and "0 has rank 2" in bad.detail


def test_max_rank_without_factored_layers_fails():
    failure = only(check_claims({"max_rank": 4}, [TorchReader(mlp(np.ones((4, 8)), np.ones((2, 4))))]), "max_rank")
    assert not failure.ok and failure.measured is None and "none found" in failure.detail


# ------------------------------------------------------------------ ONNX files


def quantized_model(weight_q: np.ndarray, zero_point: int, *, qdq_activations: bool) -> onnx.ModelProto:
    """``y = x @ dequant(W)``: an int weight through DequantizeLinear, activations optionally QDQ."""
    k, n = weight_q.shape
    dtype = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}[weight_q.dtype]
    inits = [numpy_helper.from_array(weight_q, "fc.weight_quantized"),
             numpy_helper.from_array(np.array(0.1, dtype=np.float32), "fc.weight_scale"),
             numpy_helper.from_array(np.array(zero_point, dtype=weight_q.dtype), "fc.weight_zero_point")]
    nodes = [helper.make_node("DequantizeLinear", ["fc.weight_quantized", "fc.weight_scale", "fc.weight_zero_point"],
                              ["fc.weight"])]
    x = "x"
    if qdq_activations:
        inits += [numpy_helper.from_array(np.array(0.05, dtype=np.float32), "x_scale"),
                  numpy_helper.from_array(np.array(128, dtype=np.uint8), "x_zero_point")]
        nodes += [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero_point"], ["x_q"]),
                  helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero_point"], ["x_dq"])]
        x = "x_dq"
    nodes.append(helper.make_node("MatMul", [x, "fc.weight"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], inits)
    assert dtype in (TensorProto.INT8, TensorProto.UINT8)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def test_onnx_quantized_weights_honour_the_zero_point(tmp_path):
    w = np.full((8, 4), 128, dtype=np.uint8)  # MatMul: (in, out); 128 is the zero point
    w[:4] = np.arange(4 * 4, dtype=np.uint8).reshape(4, 4) + 1
    art = make_artifact(tmp_path, {"sparsity": 0.5, "weight_dtype": "uint8"},
                        model=quantized_model(w, 128, qdq_activations=False))
    report = check_artifact(art)
    sparsity = only(report, "sparsity", "onnx")
    assert sparsity.ok and sparsity.measured == pytest.approx(0.5)
    dtype = only(report, "weight_dtype", "onnx")
    assert dtype.ok and dtype.measured == "uint8" and dtype.detail == "1 of 1 conv and linear weights quantized"

    wrong = check_artifact(make_artifact(tmp_path, {"weight_dtype": "int8"},
                                         model=quantized_model(w, 128, qdq_activations=False)))
    failure = only(wrong, "weight_dtype", "onnx")
    assert not failure.ok and failure.measured == "uint8"


def test_onnx_reader_reads_the_weight_through_dequantize_linear(tmp_path):
    w = np.arange(-16, 16, dtype=np.int8).reshape(8, 4)
    model = quantized_model(w, 3, qdq_activations=False)
    onnx.save(model, str(tmp_path / "m.onnx"))
    tensors = OnnxReader(tmp_path / "m.onnx").tensors()
    [weight] = [t for t in tensors if t.kind == "conv+linear"]
    assert weight.layer == "fc" and weight.quantized and weight.zero == 3.0
    assert weight.axis == 1  # MatMul's weight is (in, out): outputs on axis 1
    assert weight.matrix().shape == (4, 8)
    # Scales and zero points are not parameters.
    assert all("scale" not in t.layer and "zero_point" not in t.layer for t in tensors)


def test_activation_claims_need_quantize_linear_in_the_graph(tmp_path):
    w = np.ones((8, 4), dtype=np.int8)
    qdq = check_artifact(make_artifact(tmp_path, {"activation_bits": 8, "format": "QDQ"},
                                       model=quantized_model(w, 0, qdq_activations=True)))
    assert only(qdq, "activation_bits", "onnx").ok
    assert only(qdq, "format", "onnx").ok and only(qdq, "format", "onnx").measured == \
        "1 QuantizeLinear, 2 DequantizeLinear"

    plain = check_artifact(make_artifact(tmp_path, {"activation_bits": 8, "format": "QDQ"},
                                         model=quantized_model(w, 0, qdq_activations=False)))
    assert not only(plain, "activation_bits", "onnx").ok
    fmt = only(plain, "format", "onnx")
    assert not fmt.ok and fmt.measured == "0 QuantizeLinear, 1 DequantizeLinear"


def test_claims_a_format_cannot_show_are_unchecked(tmp_path):
    module = mlp(half_zero(4, 4))
    report = check_artifact(make_artifact(tmp_path, {"activation_bits": 8, "weight_dtype": "int8"}, module=module))
    assert report.checks == []
    assert set(report.unchecked) == {"activation_bits", "weight_dtype"}
    assert "ONNX" in report.unchecked["weight_dtype"]

    w = np.ones((8, 4), dtype=np.int8)
    onnx_only = check_artifact(make_artifact(tmp_path, {"max_rank": 2},
                                             model=quantized_model(w, 0, qdq_activations=False)))
    assert onnx_only.checks == [] and "torch module" in onnx_only.unchecked["max_rank"]


def test_every_format_is_checked(tmp_path):
    module = mlp(half_zero(4, 8))
    w = np.zeros((8, 4), dtype=np.int8)
    w[4:] = 1  # half of the ONNX weight is zero too
    art = make_artifact(tmp_path, {"sparsity": 0.5}, module=module, model=quantized_model(w, 0, qdq_activations=False))
    report = check_artifact(art)
    assert sorted(c.format for c in report.of("sparsity")) == ["onnx", "torch"]
    assert report.ok


# ------------------------------------------------------------------ readers


def test_torch_reader_kinds_and_layer_names():
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                                 torch.nn.Linear(12, 4))
    module.add_module("emb", torch.nn.Embedding(5, 2))
    kinds = {t.layer: t.kind for t in TorchReader(module).tensors()}
    assert kinds == {"0": "conv+linear", "0.bias": "bias", "1.weight": "bias", "1.bias": "bias",
                     "3": "conv+linear", "3.bias": "bias", "emb.weight": "other weight"}
    conv = next(t for t in TorchReader(module).tensors() if t.layer == "0")
    assert conv.matrix().shape == (3, 2 * 3 * 3)


def test_tensor_matrix_moves_the_output_axis_first():
    t = Tensor(layer="w", values=np.arange(6).reshape(2, 3), axis=1)
    assert t.matrix().tolist() == [[0, 3], [1, 4], [2, 5]]
    assert Tensor(layer="b", values=np.arange(3), kind="bias").matrix().shape == (1, 3)


def test_onnx_reader_gemm_trans_b_sets_the_output_axis(tmp_path):
    w = np.arange(1, 13, dtype=np.float32).reshape(3, 4)  # (out, in) with transB=1
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], transB=1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(w, "fc.weight"), numpy_helper.from_array(np.ones(3, np.float32), "fc.bias")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "g.onnx"))
    tensors = {t.layer: t for t in OnnxReader(tmp_path / "g.onnx").tensors()}
    assert set(tensors) == {"fc", "fc.bias"}
    assert tensors["fc"].axis == 0 and not tensors["fc"].quantized
    assert tensors["fc.bias"].kind == "bias"
    np.testing.assert_array_equal(tensors["fc"].matrix(), w)
