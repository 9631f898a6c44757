"""kbit, splitquant and mixed-precision: values on the claimed grid, encodings recorded, accuracy kept."""

from __future__ import annotations

import copy

import pytest

from harness.api import WeightEncoding
from harness_plugins.weight_quantization import (
    KBIT,
    MIXED_PRECISION,
    SPLITQUANT,
    assign_bits,
    quantize_symmetric,
    split_clusters,
)

MODELS = ["lenet5", "mlp", "resnet-small"]


def _levels_per_channel(weight) -> list[int]:
    w = weight.detach().reshape(weight.shape[0], -1)
    return [len(set(row.tolist())) for row in w]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_kbit_values_per_channel(model, bits, trained, apply_ctx, h):
    """At most 2^k - 1 distinct values per output channel, on a symmetric grid through zero; the
    encoding (k bits, one scale per channel) is recorded for every weight; biases untouched."""
    import torch

    dense = trained(model)
    ctx = apply_ctx(copy.deepcopy(dense), {"bits": bits})
    quant = KBIT.apply(ctx)
    for (name, layer), d in zip([(n, m) for n, m in quant.named_modules() if m in h.layers(quant)],
                                h.layers(dense), strict=True):
        assert max(_levels_per_channel(layer.weight)) <= 2 ** bits - 1
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        scale = w.abs().max(1).values / (2 ** (bits - 1) - 1)
        codes = w / scale[:, None]
        assert torch.allclose(codes, codes.round(), atol=1e-3)
        assert ctx.encodings[f"{name}.weight"] == WeightEncoding(bits=bits, scales=w.shape[0]).as_dict()
        assert torch.equal(layer.bias, d.bias)
    assert KBIT.claims({"bits": bits})["weight_bits"] == bits


@pytest.mark.parametrize("model", MODELS)
def test_kbit_agrees_with_dense(model, trained, apply_ctx, digits, h):
    """8 bits predicts as fp32 does; 4 bits nearly so."""
    dense = trained(model)
    assert h.agreement(dense, KBIT.apply(apply_ctx(copy.deepcopy(dense), {"bits": 8})), digits.test.x) >= 0.99
    assert h.agreement(dense, KBIT.apply(apply_ctx(copy.deepcopy(dense), {"bits": 4})), digits.test.x) >= 0.9


def test_two_bit_grid_is_ternary():
    import torch

    w = torch.tensor([[0.9, -0.2, 0.6, -1.0]])
    assert quantize_symmetric(w, 2).tolist() == [[1.0, 0.0, 1.0, -1.0]]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bits", [2, 3])
def test_splitquant_clusters_keep_resolution(model, bits, trained, apply_ctx, digits, h):
    """Three clusters per layer, each on its own k-bit grid per channel: at most 3 * 2^k values per channel,
    a smaller weight error than plain k-bit, and the encoding with its 2-bit cluster index."""
    dense = trained(model)
    ctx = apply_ctx(copy.deepcopy(dense), {"bits": bits})
    split = SPLITQUANT.apply(ctx)
    plain = KBIT.apply(apply_ctx(copy.deepcopy(dense), {"bits": bits}))
    err_split = err_plain = 0.0
    for d, s, p in zip(h.layers(dense), h.layers(split), h.layers(plain), strict=True):
        assert max(_levels_per_channel(s.weight)) <= 3 * 2 ** bits
        err_split += float(((s.weight - d.weight) ** 2).sum())
        err_plain += float(((p.weight - d.weight) ** 2).sum())
    assert err_split < err_plain
    assert all(e["index_bits"] == 2 and e["bits"] == bits for e in ctx.encodings.values())
    assert len(ctx.encodings) == len(h.layers(dense))
    assert h.agreement(dense, split, digits.test.x) >= (0.75 if bits == 2 else 0.9)


def test_split_clusters_orders_low_middle_high():
    import torch

    w = torch.tensor([-3.0, -2.9, 0.0, 0.1, -0.1, 4.0, 4.2])
    assert split_clusters(w).tolist() == [0, 0, 1, 1, 1, 2, 2]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("budget", [3.0, 4.5])
def test_mixed_precision_respects_the_budget(model, budget, trained, apply_ctx, digits, h):
    """Bits per layer among 2..8, their weight-weighted mean within the budget, each layer on its grid."""
    dense = trained(model)
    ctx = apply_ctx(copy.deepcopy(dense), {"bits": budget})
    quant = MIXED_PRECISION.apply(ctx)
    named = {f"{n}.weight": m for n, m in quant.named_modules() if m in h.layers(quant)}
    assert set(ctx.encodings) == set(named)
    total = sum(m.weight.numel() for m in named.values())
    mean_bits = sum(ctx.encodings[n]["bits"] * m.weight.numel() for n, m in named.items()) / total
    assert mean_bits <= budget + 1e-9
    for name, layer in named.items():
        bits = ctx.encodings[name]["bits"]
        assert 2 <= bits <= 8 and max(_levels_per_channel(layer.weight)) <= 2 ** bits - 1
    assert h.agreement(dense, quant, digits.test.x) >= 0.85


def test_assign_bits_solves_the_integer_program():
    """Two layers of equal size, mean budget 5: the sensitive layer gets 8 bits, the robust one 2."""
    sens = {"a": {2: 10.0, 4: 1.0, 8: 0.0}, "b": {2: 0.1, 4: 0.05, 8: 0.0}}
    assert assign_bits(sens, {"a": 100, "b": 100}, 5.0) == {"a": 8, "b": 2}
    assert assign_bits(sens, {"a": 100, "b": 100}, 8.0) == {"a": 8, "b": 8}
    with pytest.raises(ValueError, match="no assignment"):
        assign_bits(sens, {"a": 100, "b": 100}, 1.0)


def test_weight_encoding_packed_bytes():
    """Codes packed to the bit, index bits added, 4-byte scales and 1-byte zero points."""
    assert WeightEncoding(bits=4, scales=10).packed_bytes(1000) == 500 + 40
    assert WeightEncoding(bits=3, index_bits=2, scales=3, zero_points=3).packed_bytes(9) == 6 + 12 + 3
