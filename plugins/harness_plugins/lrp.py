"""``lrp-mixed-precision``: bits per layer guided by Layer-wise Relevance Propagation, as LRP-QViT
(Ranjan & Savakis 2024, LRP-QViT: Mixed-Precision Vision Transformer Quantization via Layer-wise
Relevance Propagation) does.

1. Relevance. captum's LRP (``captum.attr.LayerLRP``, epsilon rule on every Conv2d and Linear) propagates
   each calibration sample's predicted-class logit back through the network; a layer's contribution is
   the mean over samples of the summed absolute relevance at its output, normalised over the layers.
   captum, not zennit: zennit's wheel requires torchvision, which does not import beside the torch this
   project pins; captum needs only torch, numpy and matplotlib. captum has no rules for a transformer's
   LayerNorm, GELU or attention softmax; on a private copy of the model those modules are replaced by
   the conservative rules of Ali et al. 2022 (XAI for Transformers: Better Explanations through
   Conservative Propagation), written so that captum's epsilon rule applied to them is exact:
   LayerNorm with its standard deviation held constant (their LN-rule), GELU as ``x * (gelu(x) / x)``
   with the gate held constant (relevance passes through unchanged), and the attention's softmax held
   constant (their AH-rule: relevance reaches the values, none the queries and keys). ReLU, Dropout,
   Tanh, pooling, Flatten and Identity use captum's own handling; a model with any other layer type is
   refused with its name.
2. Allocation. Each layer's cost at ``b`` bits is its contribution times the relative error of its
   ``b``-bit weights (``||W - Q_b(W)||^2 / ||W||^2``): relevant layers pay more for coarse weights. Bits
   per layer (2-8) minimise the summed cost with the weight-weighted mean at most the budget, by the
   integer program ``mixed-precision`` solves (HAWQ-V3's, ``scipy.optimize.milp``). LRP-QViT turns its
   contribution scores into bits by its own search; the integer program is this harness's way of
   meeting the mean-bit budget exactly, shared with ``mixed-precision`` so the two differ only in how
   they rate a layer.
3. Quantization per output channel, symmetric, at each layer's bits; same claims and encodings as
   ``mixed-precision``.
"""

from __future__ import annotations

from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, hookimpl
from harness_plugins._layers import named_layers
from harness_plugins.weight_quantization import BITS, mixed_claims, quantize_by_cost, quantize_symmetric


def _conservative_modules() -> dict:
    """``{torch type: replacement class}``: the transformer layers captum lacks rules for (see the module)."""
    import torch
    from torch import nn

    class ConstantStdLayerNorm(nn.Module):
        """LayerNorm with the standard deviation detached (Ali et al. 2022's LN-rule): linear in x."""

        def __init__(self, norm: nn.LayerNorm):
            super().__init__()
            self.norm = norm.normalized_shape, norm.weight, norm.bias, norm.eps

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape, weight, bias, eps = self.norm
            dims = tuple(range(-len(shape), 0))
            centred = x - x.mean(dims, keepdim=True)
            std = (centred.pow(2).mean(dims, keepdim=True) + eps).sqrt().detach()
            out = centred / std
            if weight is not None:
                out = out * weight.detach()
            return out + bias.detach() if bias is not None else out

    class GatedActivation(nn.Module):
        """``x * gate`` with ``gate = f(x) / x`` detached: epsilon-LRP through it is the identity."""

        def __init__(self, act: nn.Module):
            super().__init__()
            self.act = (act,)  # held, not registered: this module must stay a leaf for captum

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.act[0](x)
            safe = torch.where(x.abs() > 1e-12, x, torch.ones_like(x))
            gate = torch.where(x.abs() > 1e-12, y / safe, torch.zeros_like(x)).detach()
            return x * gate

    class ConstantSoftmax(nn.Module):
        """The softmax's probabilities as constants (AH-rule): no relevance flows to its input."""

        def __init__(self, softmax: nn.Softmax):
            super().__init__()
            self.dim = softmax.dim

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # + 0 * x keeps the output in the graph (captum hooks it) while its gradient to x is zero.
            return torch.softmax(x, self.dim).detach() + 0 * x

    return {nn.LayerNorm: ConstantStdLayerNorm, nn.GELU: GatedActivation, nn.SiLU: GatedActivation,
            nn.Softmax: ConstantSoftmax}


def _prepare(module: Any) -> Any:
    """A copy of ``module`` whose every leaf layer has an LRP rule captum applies (see the module)."""
    import copy

    from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS
    from captum.attr._utils.lrp_rules import EpsilonRule
    from torch import nn

    work = copy.deepcopy(module).eval()
    replace = _conservative_modules()
    for name, child in list(work.named_modules()):
        if type(child) in replace:
            parent_name, _, attr = name.rpartition(".")
            parent = work.get_submodule(parent_name) if parent_name else work
            new = replace[type(child)](child)
            new.rule = EpsilonRule()
            setattr(parent, attr, new)
    exact = (nn.Flatten, nn.Identity)
    for name, child in work.named_modules():
        if next(child.children(), None) is not None or hasattr(child, "rule"):
            continue
        if isinstance(child, exact) or getattr(child, "lrp_linear", False):
            # A reshape, an identity, or a parameter-free layer that declares itself linear in its inputs
            # (a sum as a module): the epsilon rule through it is exact, and splits a sum's relevance.
            child.rule = EpsilonRule()
        elif type(child) not in SUPPORTED_LAYERS_WITH_RULES and type(child) not in SUPPORTED_NON_LINEAR_LAYERS:
            raise ValueError(f"lrp-mixed-precision: no LRP rule for layer {name!r} ({type(child).__name__}); "
                             "covered: Conv2d, Linear, pooling, ReLU, Tanh, Dropout, Flatten, Identity, "
                             "LayerNorm, GELU, SiLU, Softmax")
    return work


def layer_relevance(module: Any, x: Any) -> dict[str, float]:
    """``{layer: contribution}`` of every Conv2d and Linear layer on the batch ``x``, summing to 1: the mean
    absolute LRP relevance at its output for the predicted class (captum ``LayerLRP``)."""
    import torch
    from captum.attr import LayerLRP

    work = _prepare(module)
    layers = named_layers(work)
    with torch.no_grad():
        target = work(x).argmax(1)
    relevance = LayerLRP(work, [layer for _, layer in layers]).attribute(x.clone().requires_grad_(), target=target)
    scores = {name: float(r.detach().abs().flatten(1).sum(1).mean()) for (name, _), r in zip(layers, relevance)}
    total = sum(scores.values())
    if not total > 0:
        raise ValueError("lrp-mixed-precision: LRP gave no relevance to any layer (all-zero outputs?)")
    return {name: s / total for name, s in scores.items()}


def quantization_error(weight: Any, bits: int) -> float:
    """Relative squared error of ``weight`` at ``bits`` bits, per-channel symmetric."""
    w = weight.detach()
    return float(((w - quantize_symmetric(w, bits)) ** 2).sum() / (w ** 2).sum().clamp_min(1e-30))


def apply_lrp_mixed_precision(ctx: ApplyContext) -> Any:
    """Rate each layer by LRP on the calibration split, then choose and apply bits per layer (see the module)."""
    import numpy as np
    import torch

    budget = float(ctx.params["bits"])
    x = torch.from_numpy(np.ascontiguousarray(ctx.splits.calibration.x))
    contribution = layer_relevance(ctx.module, x)
    cost = {name: {b: contribution[name] * quantization_error(layer.weight, b) for b in BITS}
            for name, layer in named_layers(ctx.module)}
    return quantize_by_cost(ctx, cost, budget, method="lrp-mixed-precision")


LRP_MIXED_PRECISION = MethodSpec(
    name="lrp-mixed-precision", apply=apply_lrp_mixed_precision, claims=mixed_claims,
    params=(Param("bits", float, min=2.0, max=8.0, help="budget: mean bits per weight over all layers"),),
    source="Ranjan & Savakis 2024, LRP-QViT: Mixed-Precision Vision Transformer Quantization via Layer-wise "
           "Relevance Propagation; conservative LayerNorm and attention rules of Ali et al. 2022 "
           "(captum.attr.LayerLRP, scipy.optimize.milp, torch.ao.quantization)",
    description="per-layer bits (2-8) from LRP relevance on calibration data under a mean-bits budget, "
                "per-channel symmetric",
)


@hookimpl
def harness_register_methods(register):
    """Register ``lrp-mixed-precision``."""
    register(LRP_MIXED_PRECISION)
