"""vit-tiny (timm parameter names, ONNX) and lrp-mixed-precision (captum LRP with conservative rules for
LayerNorm, GELU and the attention softmax; bits per layer under a mean budget)."""

from __future__ import annotations

import copy

import pytest

from harness_plugins.models import VIT_TINY

pytest.importorskip("captum")

TIMM_KEYS = {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.norm1.weight", "blocks.0.attn.qkv.weight",
             "blocks.0.attn.proj.weight", "blocks.0.norm2.bias", "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.bias",
             "norm.weight", "head.weight", "head.bias"}


@pytest.fixture(scope="module")
def vit(model_ctx):
    """vit-tiny briefly trained on digits (seed 0): enough for relevance to mean something."""
    import torch

    from harness.api import train_classifier

    ctx = model_ctx(VIT_TINY)
    torch.manual_seed(0)
    module = VIT_TINY.build(ctx)
    train_classifier(module, ctx.splits, seed=0, epochs=4, lr=2e-3)
    return module.eval()


def test_vit_has_timm_names_and_loads_a_state_dict_file_safely(vit, tmp_path, digits):
    """The parameter names are timm's; a state_dict file round-trips through the host's safe loader."""
    import numpy as np
    import torch

    from harness.api import load_state_dict

    state = vit.state_dict()
    assert TIMM_KEYS <= set(state)
    path = tmp_path / "vit.pt"
    torch.save(state, path)
    fresh = copy.deepcopy(vit)
    for p in fresh.parameters():
        p.data.zero_()
    fresh.load_state_dict(load_state_dict(path, what="vit weights"))
    x = torch.from_numpy(np.ascontiguousarray(digits.test.x[:16]))
    with torch.no_grad():
        assert torch.equal(fresh(x), vit(x))


def test_vit_refuses_a_patch_that_does_not_divide_the_image(model_ctx):
    with pytest.raises(ValueError, match="divisible by patch 3"):
        VIT_TINY.build(model_ctx(VIT_TINY, patch=3))


def test_conservative_rules_conserve_relevance_through_the_blocks(vit, digits):
    """With every bias zero, epsilon-LRP through the replaced LayerNorm, GELU, softmax and residual sums is
    conservative: the relevance summed over the residual stream after each block equals the target logit."""
    import numpy as np
    import torch
    from captum.attr import LayerLRP

    from harness_plugins.lrp import _prepare

    model = copy.deepcopy(vit)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
    work = _prepare(model)
    x = torch.from_numpy(np.ascontiguousarray(digits.calibration.x[:8]))
    with torch.no_grad():
        logits = work(x)
    target = logits.argmax(1)
    cuts = [work.blocks[0].add2, work.blocks[1].add1, work.blocks[1].add2, work.norm]
    relevance = LayerLRP(work, cuts).attribute(x.clone(), target=target)
    expected = logits.gather(1, target[:, None]).squeeze(1)
    for r in relevance:
        assert torch.allclose(r.flatten(1).sum(1), expected, rtol=1e-3, atol=1e-4)


def test_relevance_covers_every_layer_and_sums_to_one(vit, digits):
    import numpy as np
    import torch

    from harness_plugins._layers import named_layers
    from harness_plugins.lrp import layer_relevance

    scores = layer_relevance(vit, torch.from_numpy(np.ascontiguousarray(digits.calibration.x)))
    assert list(scores) == [n for n, _ in named_layers(vit)]
    assert all(s >= 0 for s in scores.values()) and abs(sum(scores.values()) - 1) < 1e-9


@pytest.mark.parametrize("budget", [3.0, 4.0])
def test_lrp_allocation_meets_the_budget_and_quantizes_each_layer(vit, apply_ctx, budget):
    import numpy as np

    from harness_plugins._layers import named_layers
    from harness_plugins.lrp import LRP_MIXED_PRECISION

    ctx = apply_ctx(copy.deepcopy(vit), {"bits": budget})
    out = LRP_MIXED_PRECISION.apply(ctx)
    layers = named_layers(out)
    bits = {n: ctx.encodings[f"{n}.weight"]["bits"] for n, _ in layers}
    sizes = {n: m.weight.numel() for n, m in layers}
    assert sum(bits[n] * sizes[n] for n in bits) / sum(sizes.values()) <= budget + 1e-9
    assert len(set(bits.values())) > 1  # mixed, not uniform
    for name, layer in layers:  # at most 2^b - 1 levels per output channel
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).numpy()
        assert max(len(np.unique(row)) for row in w) <= 2 ** bits[name] - 1
    assert LRP_MIXED_PRECISION.claims({"bits": budget})["weight_bits_mean_max"] == budget


def test_a_layer_without_an_lrp_rule_is_refused_by_name(apply_ctx):
    import torch

    from harness_plugins.lrp import LRP_MIXED_PRECISION

    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Sigmoid(),
                                 torch.nn.Linear(16, 10))
    with pytest.raises(ValueError, match=r"no LRP rule for layer '2' \(Sigmoid\)"):
        LRP_MIXED_PRECISION.apply(apply_ctx(module, {"bits": 4.0}))
