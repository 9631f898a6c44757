"""The size suite's bits, packed bytes, peak memory and theoretical speedup on real method artifacts."""

from __future__ import annotations

import copy

import pytest

from harness.api import CellContext
from harness_plugins.quantization import INT8_STATIC
from harness_plugins.structured import CHANNEL_L1
from harness_plugins.weight_quantization import KBIT, SPLITQUANT


@pytest.fixture
def _measure(harness_host):
    """``measure(artifact, digits) -> {metric: Measurement}``: the size suite as the host registers it."""
    size = harness_host(entry_points=False).registry.suite("size")

    def measure(artifact, digits) -> dict:
        ctx = CellContext(cell={"seed": 0}, artifact=artifact, splits=digits, settings={}, open_session=None,
                          baseline=lambda *a, **k: None)
        return {m.metric: m for m in size.run(ctx)}

    return measure


def _float_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def test_dense_is_32_bits_and_its_float_bytes(_measure, trained, tmp_path, digits, h):
    dense = trained("lenet5")
    got = _measure(h.make_artifact(tmp_path / "a", dense, export=False), digits)
    assert got["bits_per_weight"].value == 32
    assert got["packed_bytes"].value == _float_bytes(dense)
    # Parameters plus input plus the live activations: more than the parameters, well under a megabyte.
    peak = got["peak_memory_mb"].value * 2**20
    assert _float_bytes(dense) < peak < _float_bytes(dense) + 64 * 1024
    assert got["peak_memory_mb"].info["by_kind"]["Parameter"] == _float_bytes(dense)


@pytest.mark.parametrize("spec, index_bits, scale_sets", [(KBIT, 0, 1), (SPLITQUANT, 2, 3)], ids=["kbit", "splitquant"])
def test_fake_quantized_weights_count_at_their_bits(_measure, spec, index_bits, scale_sets, trained, apply_ctx,
                                                    tmp_path, digits, h):
    """The recorded encodings give bits per weight (code + index bits) and the packed size (codes, scales,
    zero points, float biases)."""
    dense = trained("lenet5")
    ctx = apply_ctx(copy.deepcopy(dense), {"bits": 3})
    module = spec.apply(ctx)
    got = _measure(h.make_artifact(tmp_path / "a", module, export=False, encodings=ctx.encodings), digits)
    assert got["bits_per_weight"].value == 3 + index_bits
    expected = 0
    for layer in h.layers(module):
        n, out = layer.weight.numel(), layer.weight.shape[0]
        zero_points = out * scale_sets if index_bits else 0
        expected += -(-n * (3 + index_bits) // 8) + 4 * out * scale_sets + zero_points + 4 * layer.bias.numel()
    assert got["packed_bytes"].value == expected
    assert got["packed_bytes"].value < _float_bytes(dense) / 4


def test_onnx_int8_counts_one_byte_per_weight(_measure, trained, apply_ctx, tmp_path, digits, h):
    dense = trained("lenet5")
    onnx_file = INT8_STATIC.apply(apply_ctx(copy.deepcopy(dense), h.defaults(INT8_STATIC)))
    got = _measure(h.make_artifact(tmp_path / "a", onnx_file=onnx_file), digits)
    assert got["bits_per_weight"].value == 8
    weights = sum(layer.weight.numel() for layer in h.layers(dense))
    assert weights < got["packed_bytes"].value < weights + 4 * 1024  # int8 weights, int32 biases, scales
    assert "peak_memory_mb" not in got  # measured on torch modules only


def test_structured_speedup_is_against_the_dense_reference(_measure, trained, apply_ctx, tmp_path, digits, h):
    """A shrunk model has no zeros, yet its theoretical speedup counts the FLOPs it removed."""
    from harness.api import flop_counts

    dense = trained("resnet-small")
    pruned = CHANNEL_L1.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.5}))
    analysis = flop_counts(pruned, (1, 8, 8))
    analysis["reference_flops"] = flop_counts(dense, (1, 8, 8))["flops"]
    got = _measure(h.make_artifact(tmp_path / "a", pruned, export=False, analysis=analysis), digits)
    assert got["theoretical_speedup"].value == pytest.approx(analysis["reference_flops"] / analysis["flops"])
    assert got["theoretical_speedup"].value > 3
    assert got["peak_memory_mb"].value < _measure(h.make_artifact(tmp_path / "d", dense, export=False), digits)[
        "peak_memory_mb"].value


def test_encodings_must_name_real_tensors(_measure, trained, tmp_path, digits, h):
    art = h.make_artifact(tmp_path / "a", trained("mlp"), export=False, encodings={"nope.weight": {"bits": 4}})
    with pytest.raises(ValueError, match="nope.weight"):
        _measure(art, digits)
