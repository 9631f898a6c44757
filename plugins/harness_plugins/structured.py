"""Structured pruning that really shrinks the tensors: ``channel-l1`` with torch-pruning.

Filters (output channels of convolutions, output features of linear layers) of least L1 norm are
removed, and every layer that consumes them (the next layer's inputs, a residual add's other
branch, the features after a flatten) loses the matching inputs: torch-pruning's DependencyGraph
(Fang et al. 2023) finds these couplings. The artifact is a smaller dense model, so dense
backends run it faster with no sparse kernels at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, hookimpl
from harness_plugins._layers import named_layers, output_layer

RULE = ("every conv and linear layer but the classifier keeps max(1, floor(channels x (1 - sparsity))) output "
        "channels; coupled channels (residual adds, flatten) are removed together")


def kept_channels(channels: int, sparsity: float) -> int:
    """How many of a layer's ``channels`` output channels survive ``sparsity`` (at least one)."""
    return max(1, int(channels * (1 - sparsity) + 1e-9))


def apply_channel_l1(ctx: ApplyContext) -> Any:
    """Remove the ``sparsity`` share of each layer's output channels with least L1 norm (Li et al. 2017)."""
    import torch
    import torch_pruning as tp

    module = ctx.module.eval()
    sparsity = float(ctx.params["sparsity"])
    classifier = output_layer(module, ctx.input_shape)
    ratios = {}
    for _name, layer in named_layers(module):
        if layer is classifier:
            continue
        channels = layer.weight.shape[0]
        # torch-pruning keeps int(channels * (1 - ratio)); aim half a channel above the count we want.
        ratios[layer] = 1 - (kept_channels(channels, sparsity) + 0.5) / channels
    example = torch.zeros((1, *ctx.input_shape))
    pruner = tp.pruner.MagnitudePruner(
        module, example, importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=sparsity, pruning_ratio_dict=ratios, ignored_layers=[classifier])
    pruner.step()
    return module


def channel_claims(params: Mapping[str, Any]) -> dict:
    """The share of output channels removed, per layer, and that the tensors really shrank."""
    return {"channel_sparsity": float(params["sparsity"]), "channel_rule": RULE, "structured": True}


CHANNEL_L1 = MethodSpec(
    name="channel-l1", apply=apply_channel_l1, claims=channel_claims,
    params=(Param("sparsity", float, min=0.0, max=1.0, max_exclusive=True,
                  help="share of each layer's output channels removed (the classifier keeps all)"),),
    source="Li et al. 2017, Pruning Filters for Efficient ConvNets (L1 filter norm); Fang et al. 2023, "
           "DepGraph: Towards Any Structural Pruning (torch-pruning)",
    description="structured filter/channel pruning by L1 norm: smaller Conv/Linear layers, consumers adjusted",
)


@hookimpl
def harness_register_methods(register):
    """Register ``channel-l1``."""
    register(CHANNEL_L1)
