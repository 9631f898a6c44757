"""Unstructured pruning with ``torch.nn.utils.prune``: ``random``, ``global-magnitude`` and
``layer-magnitude`` (the ``dense`` baseline is built into the harness: ``harness.builtins.dense``).

- ``random``: Liu et al. 2022, The Unreasonable Effectiveness of Random Pruning (the baseline every
  scoring rule must beat);
- ``global-magnitude`` and ``layer-magnitude``: Han et al. 2015, Learning both Weights and Connections
  for Efficient Neural Networks, compared as in Blalock et al. 2020, What is the State of Neural
  Network Pruning? (ShrinkBench).

Each method prunes the ``weight`` of every ``nn.Conv2d`` and ``nn.Linear`` (biases untouched)
and then calls ``prune.remove`` so the zeros are baked into plain weight tensors: the artifact
is an ordinary module, saved and exported to ONNX like the dense one.
"""

from __future__ import annotations

from typing import Any

from harness.api import ApplyContext, MethodSpec, hookimpl
from harness_plugins._layers import prunable, sparsity_claims, sparsity_param


def _finish(targets: list[tuple[Any, str]]) -> None:
    """Make the pruning permanent: fold each mask into its weight and drop the reparametrisation."""
    from torch.nn.utils import prune

    for layer, name in targets:
        prune.remove(layer, name)


def apply_random(ctx: ApplyContext) -> Any:
    """Global random unstructured pruning: a uniformly random ``sparsity`` share of all weights."""
    import torch
    from torch.nn.utils import prune

    targets = prunable(ctx.module)
    # Seed from the cell's seed inside a forked RNG: the mask depends on the seed alone (not on
    # what ran before in the worker), and the caller's RNG state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        prune.global_unstructured(targets, pruning_method=prune.RandomUnstructured,
                                  amount=float(ctx.params["sparsity"]))
    _finish(targets)
    return ctx.module


def apply_global_magnitude(ctx: ApplyContext) -> Any:
    """Global magnitude pruning: the ``sparsity`` share of smallest-|w| weights across all layers."""
    from torch.nn.utils import prune

    targets = prunable(ctx.module)
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured,
                              amount=float(ctx.params["sparsity"]))
    _finish(targets)
    return ctx.module


def apply_layer_magnitude(ctx: ApplyContext) -> Any:
    """Layer-wise magnitude pruning: the ``sparsity`` share of smallest-|w| weights in each layer."""
    from torch.nn.utils import prune

    targets = prunable(ctx.module)
    for layer, name in targets:
        prune.l1_unstructured(layer, name, amount=float(ctx.params["sparsity"]))
    _finish(targets)
    return ctx.module


RANDOM = MethodSpec(
    name="random", apply=apply_random, params=(sparsity_param(),), claims=sparsity_claims,
    source="Liu et al. 2022, The Unreasonable Effectiveness of Random Pruning (torch.nn.utils.prune)",
    description="global random unstructured pruning of conv+linear weights (seeded by the cell's seed)",
)

GLOBAL_MAGNITUDE = MethodSpec(
    name="global-magnitude", apply=apply_global_magnitude, params=(sparsity_param(),), claims=sparsity_claims,
    source="Han et al. 2015, Learning both Weights and Connections; Blalock et al. 2020, "
           "What is the State of Neural Network Pruning? (ShrinkBench) (torch.nn.utils.prune)",
    description="global unstructured L1-magnitude pruning of conv+linear weights",
)

LAYER_MAGNITUDE = MethodSpec(
    name="layer-magnitude", apply=apply_layer_magnitude, params=(sparsity_param(),), claims=sparsity_claims,
    source="Han et al. 2015, Learning both Weights and Connections (torch.nn.utils.prune)",
    description="per-layer unstructured L1-magnitude pruning of conv+linear weights, same sparsity "
                "in every layer",
)


@hookimpl
def harness_register_methods(register):
    """Register ``random``, ``global-magnitude`` and ``layer-magnitude``."""
    for spec in (RANDOM, GLOBAL_MAGNITUDE, LAYER_MAGNITUDE):
        register(spec)
