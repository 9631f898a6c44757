"""Pruning by scores computed from calibration data: ``gradient`` (GBLM-Pruner's first-order term)
and ``wanda`` (weights and activations).

- ``gradient``: Das et al. 2023, Beyond Size: How Gradients Shape Pruning Decisions in Large Language
  Models (GBLM-Pruner), whose gradient term ``|w| * ||g||_2`` is the first-order Taylor score of
  Molchanov et al. 2019, Importance Estimation for Neural Network Pruning;
- ``wanda``: Sun et al. 2024, A Simple and Effective Pruning Approach for Large Language Models.

Both score every weight of every Conv2d and Linear layer, then prune the lowest-scoring
``sparsity`` share of each output row (the comparison group of both papers), spread so that each
layer's sparsity is the requested one to within a weight. The scores use ``splits.calibration``
only; the masks are installed and folded into plain weights with ``torch.nn.utils.prune``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import ApplyContext, MethodSpec, hookimpl
from harness_plugins._layers import (
    SCOPE,
    apply_masks,
    as_matrix,
    calibration_batch,
    named_layers,
    rowwise_mask,
    sparsity_param,
)


def gradient_scores(module: Any, x: Any, y: Any) -> dict[str, Any]:
    """``|w| * ||g||_2`` per weight, ``g`` the per-sample gradients of the cross-entropy loss over the
    calibration samples (GBLM-Pruner's gradient term; ``torch.func`` computes per-sample gradients).

    Returns ``{layer_name: score}``, each shaped like the layer's weight matrix ``(out, in*kh*kw)``.
    """
    import torch
    from torch.func import functional_call, grad, vmap

    layers = named_layers(module)
    names = [f"{n}.weight" for n, _ in layers]
    params = {k: v.detach() for k, v in module.named_parameters()}

    def loss(weights: dict, xi: Any, yi: Any) -> Any:
        out = functional_call(module, {**params, **weights}, (xi[None],))
        return torch.nn.functional.cross_entropy(out, yi[None])

    module.eval()
    sq = {n: torch.zeros_like(params[n]) for n in names}
    # Chunks bound the memory of the per-sample gradients (batch x parameters).
    for start in range(0, len(x), 32):
        g = vmap(grad(loss), in_dims=(None, 0, 0))({n: params[n] for n in names}, x[start:start + 32],
                                                     y[start:start + 32])
        for n in names:
            sq[n] += (g[n] ** 2).sum(0)
    return {layer: as_matrix(params[f"{layer}.weight"].abs() * sq[f"{layer}.weight"].sqrt())
            for layer, _ in layers}


def activation_norms(module: Any, x: Any) -> dict[str, Any]:
    """``||X_j||_2`` for every input feature ``j`` of every Conv2d and Linear layer, over the calibration
    samples (and, for convolutions, every position of the unfolded patches: each column of the
    layer's input as the matrix product sees it)."""
    import torch
    from torch import nn

    layers = named_layers(module)
    sums: dict[str, Any] = {}

    def hook(name: str, layer: Any):
        def record(_mod: Any, inputs: tuple, _out: Any) -> None:
            inp = inputs[0].detach()
            if isinstance(layer, nn.Conv2d):
                cols = nn.functional.unfold(inp, layer.kernel_size, dilation=layer.dilation,
                                            padding=layer.padding, stride=layer.stride)  # (N, in*kh*kw, L)
                sq = (cols ** 2).sum(dim=(0, 2))
            else:
                sq = (inp.reshape(-1, inp.shape[-1]) ** 2).sum(0)
            sums[name] = sums.get(name, 0) + sq
        return record

    handles = [layer.register_forward_hook(hook(name, layer)) for name, layer in layers]
    try:
        with torch.no_grad():
            module.eval()
            for start in range(0, len(x), 64):
                module(x[start:start + 64])
    finally:
        for h in handles:
            h.remove()
    return {name: s.sqrt() for name, s in sums.items()}


def apply_gradient(ctx: ApplyContext) -> Any:
    """Score ``|w| * ||g||_2`` from the calibration split's per-sample gradients; prune per output row."""
    module = ctx.module
    x, y = calibration_batch(module, ctx.splits)
    scores = gradient_scores(module, x, y)
    sparsity = float(ctx.params["sparsity"])
    apply_masks([(layer, rowwise_mask(scores[name], sparsity)) for name, layer in named_layers(module)])
    return module


def apply_wanda(ctx: ApplyContext) -> Any:
    """Score ``|W_ij| * ||X_j||_2`` from the calibration split's activations; prune per output row."""
    import numpy as np
    import torch

    module = ctx.module
    x = torch.from_numpy(np.ascontiguousarray(ctx.splits.calibration.x))
    norms = activation_norms(module, x)
    sparsity = float(ctx.params["sparsity"])
    masks = []
    for name, layer in named_layers(module):
        if name not in norms:
            raise ValueError(f"wanda: layer {name} did not run on the calibration data")
        score = as_matrix(layer.weight.detach().abs()) * norms[name][None, :]
        masks.append((layer, rowwise_mask(score, sparsity)))
    apply_masks(masks)
    return module


def row_sparsity_claims(params: Mapping[str, Any]) -> dict:
    """The share of zeros over the conv and linear weights, chosen per output row."""
    return {"sparsity": float(params["sparsity"]), "sparsity_scope": SCOPE, "comparison_group": "output row"}


GRADIENT = MethodSpec(
    name="gradient", apply=apply_gradient, params=(sparsity_param(),), claims=row_sparsity_claims,
    source="Das et al. 2023, Beyond Size: How Gradients Shape Pruning Decisions in Large Language Models "
           "(GBLM-Pruner), its gradient term |w| * ||g||_2; Molchanov et al. 2019, Importance Estimation for "
           "Neural Network Pruning (first-order Taylor score) (torch.func, torch.nn.utils.prune)",
    description="unstructured pruning by |w| times the l2 norm of per-sample calibration gradients, per output row",
)

WANDA = MethodSpec(
    name="wanda", apply=apply_wanda, params=(sparsity_param(),), claims=row_sparsity_claims,
    source="Sun et al. 2024, A Simple and Effective Pruning Approach for Large Language Models (Wanda) "
           "(torch.nn.utils.prune)",
    description="unstructured pruning by |w| times the l2 norm of its input activation on calibration data, "
                "per output row",
)


@hookimpl
def harness_register_methods(register):
    """Register ``gradient`` and ``wanda``."""
    for spec in (GRADIENT, WANDA):
        register(spec)
