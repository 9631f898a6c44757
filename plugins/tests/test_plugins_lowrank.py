"""svd: layers replaced by two smaller ones of the claimed rank or retained energy."""

from __future__ import annotations

import copy

import pytest

from harness_plugins.lowrank import SVD, choose_rank

MODELS = ["lenet5", "mlp", "resnet-small"]


def _factored(module):
    """(first, second) layer pairs the method put in place of factored layers."""
    import torch

    return [(s[0], s[1]) for s in module.modules()
            if isinstance(s, torch.nn.Sequential) and len(s) == 2
            and all(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in s)]


def _product(first, second):
    a = first.weight.detach().reshape(first.weight.shape[0], -1)
    b = second.weight.detach().reshape(second.weight.shape[0], -1)
    return b @ a


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("rank", [2, 4])
def test_rank_is_at_most_the_claimed_one(model, rank, trained, apply_ctx, tmp_path, h):
    """Every factored layer is two layers whose product has rank <= r; fewer parameters; exports to ONNX."""
    import numpy as np
    import onnxruntime as ort
    import torch

    dense = trained(model)
    low = SVD.apply(apply_ctx(copy.deepcopy(dense), {"rank": rank, "energy": 0.9}))
    pairs = _factored(low)
    assert pairs
    for first, second in pairs:
        assert first.weight.shape[0] == rank and second.weight.shape[1] == rank
        assert int(torch.linalg.matrix_rank(_product(first, second))) <= rank
    assert sum(p.numel() for p in low.parameters()) < sum(p.numel() for p in dense.parameters())
    assert SVD.claims({"rank": rank, "energy": 0.9})["max_rank"] == rank
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8), dtype=np.float32)
    onnx = h.export_onnx(low, tmp_path / "low.onnx")
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = low(torch.from_numpy(x)).numpy()
    assert np.allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], ref, atol=1e-4)


@pytest.mark.parametrize("model", MODELS)
def test_energy_keeps_the_claimed_share(model, trained, apply_ctx, digits, h):
    """By energy: each factored layer keeps >= 95% of its squared singular values (the product is the
    truncated SVD of the original), and the model agrees with the dense one."""
    import torch

    dense = trained(model)
    low = SVD.apply(apply_ctx(copy.deepcopy(dense), {"rank": 0, "energy": 0.95}))
    factored = 0
    for name, orig in dense.named_modules():
        if not isinstance(orig, (torch.nn.Conv2d, torch.nn.Linear)):
            continue
        replaced = low.get_submodule(name)
        if not isinstance(replaced, torch.nn.Sequential):
            continue
        factored += 1
        prod = _product(replaced[0], replaced[1])
        w = orig.weight.detach().reshape(prod.shape).double()
        residual = float(((w - prod.double()) ** 2).sum() / (w ** 2).sum())
        assert residual <= 0.05 + 1e-6
    assert factored
    assert h.agreement(dense, low, digits.test.x) >= 0.9


def test_choose_rank():
    import torch

    s = torch.tensor([3.0, 2.0, 1.0, 0.0])  # squares 9, 4, 1: 64%, 93%, 100%
    assert choose_rank(s, 0, 0.6) == 1
    assert choose_rank(s, 0, 0.9) == 2
    assert choose_rank(s, 0, 1.0) == 3
    assert choose_rank(s, 2, 0.1) == 2 and choose_rank(s, 9, 0.1) == 4


def test_nothing_to_factor_is_an_error(trained, apply_ctx):
    with pytest.raises(ValueError, match="no layer gets smaller"):
        SVD.apply(apply_ctx(copy.deepcopy(trained("mlp")), {"rank": 0, "energy": 1.0}))
