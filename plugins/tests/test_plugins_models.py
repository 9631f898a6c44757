"""Model plugins: architectures build for any fitting shape, and their recipes train on digits."""

from __future__ import annotations

import time

import pytest

from harness.api import ModelContext
from harness_plugins.models import LENET5, MLP, RESNET_SMALL

SPECS = {"mlp": MLP, "lenet5": LENET5, "resnet-small": RESNET_SMALL}


def _ctx(spec, h, input_shape, num_classes=10, seed=0, **params):
    return ModelContext(params=h.defaults(spec, **params), input_shape=input_shape,
                        num_classes=num_classes, seed=seed)


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (2, 12, 16)])
def test_build_and_forward(name, shape, h):
    """Each model builds from the input shape and gives one logit per class."""
    import torch

    module = h.build(SPECS[name], _ctx(SPECS[name], h, shape, num_classes=7))
    out = module.eval()(torch.zeros(3, *shape))
    assert tuple(out.shape) == (3, 7)
    # No BatchNorm anywhere: it would need folding before export and quantization.
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())


def test_build_is_seeded(h):
    """The host seeds torch before build: the same seed gives the same initialisation."""
    import torch

    a = h.build(LENET5, _ctx(LENET5, h, (1, 8, 8), seed=3))
    b = h.build(LENET5, _ctx(LENET5, h, (1, 8, 8), seed=3))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_mlp_hidden_param(h):
    """``hidden`` sets the width of the MLP's hidden layer."""
    module = h.build(MLP, _ctx(MLP, h, (1, 8, 8), hidden=17))
    assert module.fc1.out_features == 17


@pytest.mark.parametrize("shape", [(1, 7, 8), (8, 8), (1, 8, 6)])
def test_lenet5_rejects_bad_shapes(shape, h):
    """lenet5 needs (C, H, W) with H and W divisible by 4, and says so."""
    with pytest.raises(ValueError, match="lenet5"):
        h.build(LENET5, _ctx(LENET5, h, shape))


def test_pickled_whole(h, tmp_path):
    """Artifacts are pickled with torch.save(module): the classes must load back by reference."""
    import torch

    module = h.build(RESNET_SMALL, _ctx(RESNET_SMALL, h, (1, 8, 8))).eval()
    torch.save(module, tmp_path / "m.pt")
    from harness.api import load_torch_module

    # The host's loader: the classes must be admitted by reference, and nothing of the file runs.
    back = load_torch_module(tmp_path / "m.pt", what="module", instead="")
    x = torch.randn(2, 1, 8, 8)
    assert type(back).__module__ == "harness_plugins.nets"
    assert torch.equal(back(x), module(x))


@pytest.mark.parametrize("name", list(SPECS))
def test_recipe_reaches_accuracy_on_digits(name, model_ctx, digits, h):
    """Each reference recipe passes 0.9 test top-1 on digits within seconds."""
    import numpy as np
    import torch

    spec = SPECS[name]
    ctx = model_ctx(spec)
    module = h.build(spec, ctx)
    t0 = time.perf_counter()
    spec.train(module, ctx)
    elapsed = time.perf_counter() - t0
    with torch.no_grad():
        pred = module.eval()(torch.from_numpy(digits.test.x)).argmax(1).numpy()
    top1 = float(np.mean(pred == digits.test.y))
    print(f"{name}: digits test top-1 {top1:.4f} in {elapsed:.2f} s")
    assert top1 >= 0.9
    assert elapsed < 30


def test_training_is_deterministic(model_ctx, h):
    """The same seed trains to the same weights: the weights cache relies on it."""
    import torch

    runs = []
    for _ in range(2):
        ctx = model_ctx(MLP, seed=5)
        module = h.build(MLP, ctx)
        MLP.train(module, ctx)
        runs.append(module.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_train_refuses_unlabelled(model_ctx, h):
    """Training on latency-only data is an error, not silent garbage."""
    from pathlib import Path

    from harness.api import DatasetContext
    from harness_plugins.datasets import SYNTHETIC

    splits = SYNTHETIC.load(DatasetContext(params=h.defaults(SYNTHETIC), cache_dir=Path(".")))
    ctx = ModelContext(params=h.defaults(MLP), input_shape=splits.input_shape, num_classes=10, seed=0,
                       splits=splits)
    with pytest.raises(ValueError, match="labelled"):
        MLP.train(h.build(MLP, ctx), ctx)


def test_wide_mlp_shape_and_training_switch(h, digits):
    """wide-mlp has depth square hidden layers of width; epochs=0 keeps the seeded weights, epochs=1 trains."""
    import torch

    from harness_plugins.models import WIDE_MLP

    ctx = _ctx(WIDE_MLP, h, (1, 8, 8), width=96, depth=3, epochs=0)
    module = h.build(WIDE_MLP, ctx)
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(96, 64), (96, 96), (96, 96), (10, 96)]
    before = [p.detach().clone() for p in module.parameters()]
    assert WIDE_MLP.train(module, ctx)["epochs"] == 0
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))
    trained = ModelContext(params=h.defaults(WIDE_MLP, width=96, depth=2, epochs=1), input_shape=(1, 8, 8),
                           num_classes=10, seed=0, splits=digits)
    module = h.build(WIDE_MLP, trained)
    WIDE_MLP.train(module, trained)
    with torch.no_grad():
        top1 = float((module.eval()(torch.from_numpy(digits.test.x)).argmax(1).numpy() == digits.test.y).mean())
    assert top1 > 0.5
