"""Pruning plugins: requested sparsity over conv+linear weights, biases untouched, seeded random."""

from __future__ import annotations

import copy

import pytest

from harness.api import ModelContext
from harness_plugins.models import LENET5, RESNET_SMALL
from harness_plugins.pruning import GLOBAL_MAGNITUDE, LAYER_MAGNITUDE, RANDOM

PRUNERS = {"random": RANDOM, "global-magnitude": GLOBAL_MAGNITUDE, "layer-magnitude": LAYER_MAGNITUDE}


@pytest.fixture(scope="module")
def dense_modules():
    """A seeded lenet5 and resnet-small for digits shapes."""
    import torch

    out = {}
    for spec in (LENET5, RESNET_SMALL):
        torch.manual_seed(0)
        out[spec.name] = spec.build(ModelContext(params={}, input_shape=(1, 8, 8), num_classes=10, seed=0))
    return out


def _layers(module):
    import torch

    return [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def _sparsity(module) -> float:
    weights = [m.weight for m in _layers(module)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


@pytest.mark.parametrize("model", ["lenet5", "resnet-small"])
@pytest.mark.parametrize("method", list(PRUNERS))
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
def test_reaches_sparsity(model, method, sparsity, dense_modules, apply_ctx):
    """The share of zero weights is the requested one (within 0.5 points); biases are untouched."""
    import torch

    dense = dense_modules[model]
    spec = PRUNERS[method]
    pruned = spec.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": sparsity}))
    assert abs(_sparsity(pruned) - sparsity) <= 0.005
    for a, b in zip(_layers(dense), _layers(pruned), strict=True):
        assert torch.equal(a.bias, b.bias)
        # Surviving weights keep their values.
        keep = b.weight != 0
        assert torch.equal(a.weight[keep], b.weight[keep])
    # prune.remove made the zeros permanent: plain parameters, no masks or hooks left.
    assert not any(name.endswith(("_orig", "_mask")) for name, _ in pruned.named_parameters())
    assert not any(name.endswith("_mask") for name, _ in pruned.named_buffers())
    claims = spec.claims({"sparsity": sparsity})
    assert claims == {"sparsity": sparsity, "sparsity_scope": "conv+linear weights"}


def test_layer_magnitude_is_per_layer(dense_modules, apply_ctx):
    """layer-magnitude gives every layer the same sparsity."""
    pruned = LAYER_MAGNITUDE.apply(apply_ctx(copy.deepcopy(dense_modules["lenet5"]), {"sparsity": 0.7}))
    for layer in _layers(pruned):
        assert abs(float((layer.weight == 0).float().mean()) - 0.7) < 0.01


def test_global_magnitude_keeps_largest(dense_modules, apply_ctx):
    """global-magnitude zeroes exactly the smallest-|w| weights across all layers."""
    import torch

    dense = dense_modules["lenet5"]
    pruned = GLOBAL_MAGNITUDE.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.6}))
    before = torch.cat([m.weight.detach().abs().flatten() for m in _layers(dense)])
    after = torch.cat([m.weight.detach().flatten() for m in _layers(pruned)])
    assert before[after == 0].max() <= before[after != 0].min()


def test_random_is_seeded(dense_modules, apply_ctx):
    """random: the same seed gives the same mask, another seed another one."""
    import torch

    dense = dense_modules["lenet5"]

    def mask(seed):
        torch.manual_seed(seed)  # as the host does before apply
        pruned = RANDOM.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.5}, seed=seed))
        return torch.cat([(m.weight == 0).flatten() for m in _layers(pruned)])

    assert torch.equal(mask(1), mask(1))
    assert not torch.equal(mask(1), mask(2))


def test_sparsity_param_bounds():
    """sparsity is required and must lie in [0, 1)."""
    from harness.api import ParamError

    (param,) = RANDOM.params
    assert param.required
    assert param.check(0.0, "sparsity") == 0.0
    with pytest.raises(ParamError):
        param.check(1.0, "sparsity")
    with pytest.raises(ParamError):
        param.check(-0.1, "sparsity")
