"""channel-l1: layers really shrink, consumers follow, the classifier keeps its outputs."""

from __future__ import annotations

import copy

import pytest

from harness_plugins.structured import CHANNEL_L1, kept_channels

MODELS = ["lenet5", "mlp", "resnet-small"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_layers_shrink_by_the_claimed_rule(model, sparsity, trained, apply_ctx, tmp_path, h):
    """Every layer but the classifier keeps max(1, floor(C * (1 - s))) output channels; fewer parameters
    and FLOPs; the model still runs, pickles and exports to ONNX with the same outputs."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from harness.api import flop_counts

    dense = trained(model)
    pruned = CHANNEL_L1.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": sparsity}))
    before, after = h.layers(dense), h.layers(pruned)
    assert len(before) == len(after)
    for a, b in zip(before[:-1], after[:-1], strict=True):
        assert b.weight.shape[0] == kept_channels(a.weight.shape[0], sparsity)
        assert b.weight.shape[0] < a.weight.shape[0]
    assert after[-1].weight.shape[0] == before[-1].weight.shape[0] == 10
    n_before = sum(p.numel() for p in dense.parameters())
    n_after = sum(p.numel() for p in pruned.parameters())
    assert n_after < n_before * (1 - sparsity) + 200
    assert flop_counts(pruned, (1, 8, 8))["flops"] <= flop_counts(dense, (1, 8, 8))["flops"] * (1 - sparsity)
    assert CHANNEL_L1.claims({"sparsity": sparsity})["structured"] is True

    torch.save(pruned, tmp_path / "m.pt")
    from harness.api import load_torch_module

    # The host's loader: the classes must be admitted by reference, and nothing of the file runs.
    reloaded = load_torch_module(tmp_path / "m.pt", what="module", instead="")
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        ref = pruned(x).numpy()
    assert np.allclose(reloaded(x).detach().numpy(), ref)
    onnx = h.export_onnx(pruned, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert np.allclose(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0], ref, atol=1e-5)


def test_kept_channels_keeps_the_largest_l1_filters(trained, apply_ctx):
    """mlp's hidden layer keeps the units whose incoming weights have the largest L1 norm (the outgoing
    weights of fc2 are coupled and summed into the importance by torch-pruning, so check the top set
    against the joint L1 norm)."""
    import torch

    dense = trained("mlp")
    pruned = CHANNEL_L1.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.5}))
    kept_rows = pruned.fc1.weight.detach()
    # Which original units survived: match rows exactly.
    survivors = [int(torch.nonzero((dense.fc1.weight == row).all(1))[0]) for row in kept_rows]
    assert len(set(survivors)) == kept_channels(64, 0.5)
    # Each unit's coupled weights move together: its fc2 column survives with it.
    assert torch.equal(pruned.fc2.weight.detach(), dense.fc2.weight.detach()[:, survivors])


@pytest.mark.parametrize("model", MODELS)
def test_agrees_with_dense_after_finetuning(model, trained, apply_ctx, digits, h):
    """Structured pruning costs accuracy until fine-tuned: channel-l1 at 0.25 then finetune agrees with dense."""
    from harness_plugins.retraining import FINETUNE

    dense = trained(model)
    pruned = CHANNEL_L1.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.25}))
    tuned = FINETUNE.apply(apply_ctx(pruned, {"epochs": 3, "lr": 1e-3}))
    assert h.agreement(dense, tuned, digits.test.x) >= 0.85
