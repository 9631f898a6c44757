"""torch-cuda-kernels: the layer selection and int8 conversion run (and are tested) on the CPU; the 2:4 and
int8 CUDA kernels run where a device is lent, and without one every cell is skipped with the reason."""

from __future__ import annotations

import copy

import pytest

from harness_plugins.backends.cuda_kernels import (
    TORCH_CUDA_KERNELS,
    is_2_4,
    quantize_rows,
    semi_structured_plan,
    to_int8,
)


def _nm(weight, n=2, m=4):
    """``weight`` with the n largest of every m consecutive inputs of each row kept (as the n-m method)."""
    import torch

    from harness_plugins.patterns import nm_mask

    with torch.no_grad():
        return weight * nm_mask(weight, n, m)


def test_2_4_detection_and_plan():
    """Only 2:4 weights whose shape fits CUTLASS's rules are planned for the sparse kernel."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 64), nn.Linear(64, 10), nn.Linear(64, 64))
    with torch.no_grad():
        net[0].weight.copy_(_nm(net[0].weight))
        net[3].weight.copy_(_nm(net[3].weight))
    assert is_2_4(net[0].weight) and not is_2_4(net[2].weight)
    assert not is_2_4(_nm(torch.randn(8, 8), n=3))
    plan = semi_structured_plan(net)
    assert plan["0"] == "2:4"
    assert plan["2"] == "dense: 64x32 is not a multiple of 32x64"
    assert plan["3"].startswith("dense: 10x64 is not a multiple")
    assert plan["4"] == "dense: weight is not 2:4 sparse"


def test_int8_linear_tracks_the_float_layer():
    """int8 weights x int8 activations through torch._int_mm stay within int8 rounding of the float output."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
    x = torch.randn(5, 64)  # fewer than 17 rows: padded for the CUDA kernel's rule, sliced after
    ref = net(x).detach()
    converted = copy.deepcopy(net)
    plan = to_int8(converted)
    assert plan["0"] == "int8" and plan["2"].startswith("dense: 10x128")
    with torch.inference_mode():
        out = converted(x)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) <= 0.02 * float(ref.abs().max())
    assert float((out - ref).abs().max()) > 0  # it really ran in int8


def test_quantize_rows_is_symmetric_int8():
    import torch

    x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]])
    codes, scale = quantize_rows(x)
    assert codes.dtype == torch.int8 and codes[0].tolist() == [64, -127, 32] and codes[1].tolist() == [0, 0, 0]
    assert torch.allclose(codes[0].float() * scale[0], x[0], atol=scale[0].item())


def test_without_a_device_the_backend_says_why():
    """No CUDA: available() is False with the reason (the cells become skipped records)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    ok, why = TORCH_CUDA_KERNELS.available()
    assert not ok and why
    TORCH_CUDA_KERNELS.check()
    assert {p.name for p in TORCH_CUDA_KERNELS.params} >= {"dtype", "mode", "kernels"}
