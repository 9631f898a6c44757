"""finetune and lottery-ticket: zeros stay zero, the claimed sparsity holds, training is seeded."""

from __future__ import annotations

import copy

import pytest

from harness_plugins.pruning import GLOBAL_MAGNITUDE
from harness_plugins.retraining import FINETUNE, LOTTERY_TICKET
from harness_plugins.weight_quantization import KBIT

LT = {"rounds": 2, "epochs": 1, "lr": 3e-3, "rewind_step": 5}


@pytest.mark.parametrize("model", ["lenet5", "mlp", "resnet-small"])
def test_finetune_keeps_pruned_zeros_and_recovers(model, trained, apply_ctx, digits, h):
    """After global magnitude pruning at 0.75, fine-tuning (default budget) leaves exactly the same weights
    at zero and brings the model back to the dense one's predictions."""
    import torch

    dense = trained(model)
    pruned = GLOBAL_MAGNITUDE.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.75}))
    zeros = [layer.weight.detach() == 0 for layer in h.layers(pruned)]
    before = h.agreement(dense, pruned, digits.test.x)
    tuned = FINETUNE.apply(apply_ctx(copy.deepcopy(pruned), h.defaults(FINETUNE)))
    for z, layer in zip(zeros, h.layers(tuned), strict=True):
        assert torch.equal(layer.weight.detach() == 0, z)
    after = h.agreement(dense, tuned, digits.test.x)
    assert after >= before and after >= 0.9
    assert FINETUNE.claims({"epochs": 3, "lr": 1e-3}) == {}


def test_finetune_is_seeded(trained, apply_ctx, h):
    """The same seed gives the same weights; another seed other weights."""
    import torch

    def tune(seed):
        return FINETUNE.apply(apply_ctx(copy.deepcopy(trained("mlp")), {"epochs": 1, "lr": 1e-3}, seed=seed))

    a, b, c = tune(1), tune(1), tune(2)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_finetune_refuses_to_follow_quantization(trained, apply_ctx):
    """Training would move k-bit weights off their grid: finetune belongs before quantization."""
    ctx = apply_ctx(copy.deepcopy(trained("mlp")), {"bits": 4})
    module = KBIT.apply(ctx)
    tune = apply_ctx(module, {"epochs": 1, "lr": 1e-3})
    tune.encodings.update(ctx.encodings)
    with pytest.raises(ValueError, match="before quantization"):
        FINETUNE.apply(tune)


@pytest.mark.parametrize("model", ["lenet5", "mlp", "resnet-small"])
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_lottery_ticket_reaches_sparsity(model, sparsity, trained, apply_ctx, digits, h):
    """The final sparsity is the claimed one (within 0.5 points) and, at half sparsity, the ticket
    agrees with the dense model."""
    dense = trained(model)
    ticket = LOTTERY_TICKET.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": sparsity, **LT}))
    assert abs(h.weight_sparsity(ticket) - sparsity) <= 0.005
    assert LOTTERY_TICKET.claims({"sparsity": sparsity, **LT})["sparsity"] == sparsity
    if sparsity == 0.5:
        assert h.agreement(dense, ticket, digits.test.x) >= 0.85


def test_lottery_ticket_rewinds_survivors(trained, apply_ctx, monkeypatch):
    """With rewind_step 0 and no training at all between pruning rounds, the survivors keep exactly the
    weights the method started from: rewinding restores them."""
    import torch

    import harness_plugins.retraining

    monkeypatch.setattr(harness_plugins.retraining, "train_classifier", lambda *a, **k: {"steps": 0})
    dense = trained("mlp")
    ticket = LOTTERY_TICKET.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.75, **LT, "rewind_step": 0}))
    kept = ticket.fc1.weight != 0
    assert torch.equal(ticket.fc1.weight[kept], dense.fc1.weight[kept])


def test_lottery_ticket_rewind_step_beyond_the_first_round(trained, apply_ctx):
    # A train split too small for rewind_step steps rewinds to where round 1 ended, and the ticket
    # still reaches its sparsity.
    import torch

    module = LOTTERY_TICKET.apply(apply_ctx(copy.deepcopy(trained("mlp")),
                                            {"sparsity": 0.5, **LT, "rewind_step": 10_000}))
    weights = [m.weight for m in module.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.5, abs=0.005)
