"""Methods that train: ``finetune`` (a pipeline step after pruning) and ``lottery-ticket`` (iterative
magnitude pruning with weight rewinding).

- ``finetune``: retraining after pruning, Han et al. 2015, Learning both Weights and Connections;
  Renda et al. 2020, Comparing Rewinding and Fine-tuning in Neural Network Pruning;
- ``lottery-ticket``: Frankle & Carbin 2019, The Lottery Ticket Hypothesis; rewinding to early
  weights as in Frankle et al. 2020, Linear Mode Connectivity and the Lottery Ticket Hypothesis.

Both train with the harness's seeded reference trainer (``harness.api.train_classifier``:
Adam, cross-entropy, batch 64, one thread, deterministic) on the train split only, seeded by the
cell's seed, and keep pruned weights at exactly zero by re-applying the mask after every
optimizer step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, hookimpl, train_causal_lm, train_classifier
from harness_plugins._layers import SCOPE, prunable, sparsity_claims, sparsity_param


def _masks(module: Any) -> list[tuple[Any, Any]]:
    """``(weight, keep-mask)`` of every conv and linear weight: its non-zeros now."""
    return [(layer.weight, layer.weight.detach() != 0) for layer, _ in prunable(module)]


def _reapply(masks: list[tuple[Any, Any]]) -> None:
    for weight, keep in masks:
        weight.data.mul_(keep)


def _labelled(ctx: ApplyContext, method: str) -> None:
    if not ctx.splits.labelled or ctx.splits.train.y is None or not len(ctx.splits.train):
        raise ValueError(f"{method} trains on the train split: the dataset must be labelled")


def _token_windows(ctx: ApplyContext) -> bool:
    """A language-modelling dataset: token windows (``input_ids``) and no labels, the targets being the
    next tokens."""
    x = ctx.splits.train.x
    return isinstance(x, Mapping) and "input_ids" in x and ctx.splits.train.y is None and len(ctx.splits.train) > 0


def apply_finetune(ctx: ApplyContext) -> Any:
    """Train every parameter for ``epochs`` at ``lr``; weights that are zero now stay zero. On token windows
    (a language-modelling dataset) the training is next-token prediction, ``epochs`` passes of batch 32."""
    import math

    from torch import nn

    lm = _token_windows(ctx)
    if not lm:
        _labelled(ctx, "finetune")
    if ctx.encodings:
        raise ValueError("finetune moves weights off the quantization grid an earlier step recorded "
                         f"({', '.join(sorted(ctx.encodings))}): put it before quantization in a pipeline")
    # Every conv and linear weight's zeros now (none left is fine: a model whose layers an earlier step replaced).
    masks = [(m.weight, m.weight.detach() != 0) for m in ctx.module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    epochs, lr = int(ctx.params["epochs"]), float(ctx.params["lr"])
    if lm:
        train_causal_lm(ctx.module, ctx.splits, seed=ctx.seed, steps=epochs * math.ceil(len(ctx.splits.train) / 32),
                        lr=lr, after_step=lambda _step: _reapply(masks))
    else:
        train_classifier(ctx.module, ctx.splits, seed=ctx.seed, epochs=epochs, lr=lr,
                         after_step=lambda _step: _reapply(masks))
    return ctx.module.eval()


def finetune_claims(params: Mapping[str, Any]) -> dict:
    """Fine-tuning promises nothing new; it keeps the zeros (and so the claims) of the steps before it."""
    return {}


def global_prune_to(module: Any, sparsity: float) -> None:
    """Zero the smallest-magnitude weights across every conv and linear layer until ``sparsity`` of them
    are zero (weights already zero go first), with ``torch.nn.utils.prune``."""
    from torch.nn.utils import prune

    targets = prunable(module)
    total = sum(layer.weight.numel() for layer, _ in targets)
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=round(sparsity * total))
    for layer, name in targets:
        prune.remove(layer, name)


def apply_lottery_ticket(ctx: ApplyContext) -> Any:
    """Iterative magnitude pruning with rewinding (Frankle et al.).

    Round 1 trains the model for ``epochs`` and keeps its weights after ``rewind_step`` optimizer
    steps as the rewind point (``rewind_step = 0``: the weights the method started from). Each round
    then prunes globally by magnitude, so that after round ``r`` of ``R`` a share
    ``1 - (1 - sparsity) ** (r / R)`` is zero, rewinds the surviving weights to the rewind point and
    trains again with the mask held; the last round's pruned network is trained once more.
    """
    import copy

    _labelled(ctx, "lottery-ticket")
    module = ctx.module
    sparsity, rounds = float(ctx.params["sparsity"]), int(ctx.params["rounds"])
    epochs, lr, rewind_step = int(ctx.params["epochs"]), float(ctx.params["lr"]), int(ctx.params["rewind_step"])
    rewind: dict[str, Any] = {}
    if rewind_step == 0:
        rewind = copy.deepcopy(module.state_dict())

    def first_round(step: int) -> None:
        if step == rewind_step:
            rewind.update(copy.deepcopy(module.state_dict()))

    report = train_classifier(module, ctx.splits, seed=ctx.seed, epochs=epochs, lr=lr, after_step=first_round)
    if not rewind:
        # A train split too small for rewind_step steps (a toy dataset): rewind to where round 1
        # ended, the latest point there is, rather than refuse.
        rewind = copy.deepcopy(module.state_dict())
        del report
    for r in range(1, rounds + 1):
        if r > 1:
            masks = _masks(module)
            train_classifier(module, ctx.splits, seed=ctx.seed + r, epochs=epochs, lr=lr,
                             after_step=lambda _step, m=masks: _reapply(m))
        global_prune_to(module, 1 - (1 - sparsity) ** (r / rounds))
        masks = _masks(module)
        module.load_state_dict(rewind)
        _reapply(masks)
    train_classifier(module, ctx.splits, seed=ctx.seed + rounds + 1, epochs=epochs, lr=lr,
                     after_step=lambda _step: _reapply(masks))
    return module.eval()


def _epochs(default: int) -> Param:
    return Param("epochs", int, default=default, min=1, help="epochs over the train split (per round)")


def _lr(default: float) -> Param:
    return Param("lr", float, default=default, min=0.0, min_exclusive=True, help="Adam learning rate")


FINETUNE = MethodSpec(
    name="finetune", apply=apply_finetune, claims=finetune_claims, params=(_epochs(3), _lr(3e-3)),
    source="Han et al. 2015, Learning both Weights and Connections (retraining after pruning); Renda et al. "
           "2020, Comparing Rewinding and Fine-tuning in Neural Network Pruning (harness.build.training)",
    description="seeded fine-tuning on the train split (next-token prediction on token windows) that keeps "
                "zero weights at zero: a pipeline step between pruning and quantization",
)

LOTTERY_TICKET = MethodSpec(
    name="lottery-ticket", apply=apply_lottery_ticket, claims=sparsity_claims,
    params=(
        sparsity_param(f"final share of {SCOPE} set to zero"),
        Param("rounds", int, default=3, min=1, help="prune-rewind-train rounds"),
        _epochs(2), _lr(3e-3),
        Param("rewind_step", int, default=10, min=0,
              help="optimizer step of the first round whose weights the survivors rewind to (0: the start)"),
    ),
    source="Frankle & Carbin 2019, The Lottery Ticket Hypothesis; Frankle et al. 2020, Linear Mode "
           "Connectivity and the Lottery Ticket Hypothesis (rewinding) (torch.nn.utils.prune, harness.build.training)",
    description="iterative global magnitude pruning, rewinding survivors to early weights and retraining "
                "each round",
    # check-plugin's toy dataset trains two steps an epoch: rewind to a step its first round reaches.
    example=lambda workdir: {"sparsity": 0.5, "rewind_step": 1},
)


@hookimpl
def harness_register_methods(register):
    """Register ``finetune`` and ``lottery-ticket``."""
    for spec in (FINETUNE, LOTTERY_TICKET):
        register(spec)
