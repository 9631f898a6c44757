"""Sparsity with a pattern: ``n-m`` (N:M semi-structured, 2:4 by default) and ``block`` (fine-grained
block / group sparsity).

- ``n-m``: Mishra et al. 2021, Accelerating Sparse Deep Neural Networks (NVIDIA's 2:4 and its ASP
  recipe); Zhou et al. 2021, Learning N:M Fine-grained Structured Sparse Neural Networks From Scratch;
- ``block``: Xu et al. 2023, SparseByteNN: A Novel Mobile Inference Acceleration Framework Based on
  Fine-Grained Group Sparsity; Gray et al. 2017, GPU Kernels for Block-Sparse Weights.

Both see each Conv2d and Linear weight as the matrix it multiplies, ``(out, in * kh * kw)``, and
rank weights by magnitude. ``torch.ao.pruning.WeightNormSparsifier`` computes such masks for 2-D
Linear weights only (it reads a conv kernel's last two dimensions as the matrix) and pads partial
blocks, so the masks are computed here, for both layer kinds alike, and installed with
``torch.nn.utils.prune`` like every other pruning method's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, hookimpl
from harness_plugins._layers import SCOPE, apply_masks, as_matrix, named_layers

NM_SCOPE = "conv+linear weights whose input size (in x kh x kw) is a multiple of m; other layers stay dense"


def nm_mask(weight: Any, n: int, m: int) -> Any:
    """Keep-mask with the ``n`` largest-magnitude weights of every group of ``m`` consecutive inputs
    of each output row (NVIDIA's 2:4 layout when n=2, m=4)."""
    import torch

    w = as_matrix(weight.detach()).abs()
    rows, cols = w.shape
    groups = w.reshape(rows, cols // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, groups.topk(n, dim=2).indices, True)
    return keep.reshape(rows, cols)


def apply_nm(ctx: ApplyContext) -> Any:
    """N:M pruning by magnitude. Layers whose input size is not a multiple of ``m`` stay dense, as in
    NVIDIA's ASP (the hardware pattern cannot tile them)."""
    n, m = int(ctx.params["n"]), int(ctx.params["m"])
    if n >= m:
        raise ValueError(f"n-m: n ({n}) must be smaller than m ({m})")
    masks = []
    for _name, layer in named_layers(ctx.module):
        if as_matrix(layer.weight).shape[1] % m == 0:
            masks.append((layer, nm_mask(layer.weight, n, m)))
    if not masks:
        raise ValueError(f"n-m: no Conv2d or Linear layer has an input size that is a multiple of m={m}")
    apply_masks(masks)
    return ctx.module


def nm_claims(params: Mapping[str, Any]) -> dict:
    """The pattern, and the sparsity it implies over the layers it fits."""
    n, m = int(params["n"]), int(params["m"])
    return {"n_m": f"{n}:{m}", "sparsity": 1 - n / m, "sparsity_scope": NM_SCOPE}


def block_mask(weight: Any, sparsity: float, block: tuple[int, int]) -> Any:
    """Keep-mask that zeroes whole ``block`` tiles (rows x cols of the weight matrix) of least mean squared
    magnitude, as many as bring the layer nearest to ``sparsity``. Edge tiles may be partial."""
    import torch

    w = as_matrix(weight.detach())
    rows, cols = w.shape
    br, bc = block
    nbr, nbc = -(-rows // br), -(-cols // bc)
    block_id = (torch.arange(rows)[:, None] // br) * nbc + (torch.arange(cols)[None, :] // bc)
    sizes = torch.bincount(block_id.flatten(), minlength=nbr * nbc)
    energy = torch.bincount(block_id.flatten(), weights=(w.double() ** 2).flatten(), minlength=nbr * nbc)
    order = (energy / sizes).argsort(stable=True)
    pruned = torch.cumsum(sizes[order], 0)
    target = sparsity * rows * cols
    # The prefix of weakest blocks whose size is nearest the target (none when even one block overshoots more).
    candidates = torch.cat([torch.zeros(1, dtype=pruned.dtype), pruned])
    count = int((candidates.double() - target).abs().argmin())
    drop = torch.zeros(nbr * nbc, dtype=torch.bool)
    drop[order[:count]] = True
    return ~drop[block_id]


def apply_block(ctx: ApplyContext) -> Any:
    """Block sparsity by magnitude: the same share of each layer's weights, in whole blocks."""
    block = (int(ctx.params["block_rows"]), int(ctx.params["block_cols"]))
    sparsity = float(ctx.params["sparsity"])
    apply_masks([(layer, block_mask(layer.weight, sparsity, block)) for _, layer in named_layers(ctx.module)])
    return ctx.module


def block_claims(params: Mapping[str, Any]) -> dict:
    """The sparsity, and that zeros come in whole blocks of the weight matrix."""
    return {"sparsity": float(params["sparsity"]), "sparsity_scope": SCOPE,
            "block_shape": [int(params["block_rows"]), int(params["block_cols"])],
            "block_layout": "tiles of (output rows x inputs) of the weight seen as (out, in x kh x kw), from index 0"}


NM = MethodSpec(
    name="n-m", apply=apply_nm, claims=nm_claims,
    params=(Param("n", int, default=2, min=1, help="weights kept in every group of m"),
            Param("m", int, default=4, min=2, help="group size, along the inputs of each output")),
    source="Mishra et al. 2021, Accelerating Sparse Deep Neural Networks (NVIDIA 2:4, ASP); Zhou et al. 2021, "
           "Learning N:M Fine-grained Structured Sparse Neural Networks From Scratch (torch.nn.utils.prune)",
    description="N:M semi-structured magnitude pruning: n of every m consecutive input weights kept",
)

BLOCK = MethodSpec(
    name="block", apply=apply_block, claims=block_claims,
    params=(Param("sparsity", float, min=0.0, max=1.0, max_exclusive=True,
                  help=f"share of {SCOPE} set to zero, in whole blocks"),
            Param("block_rows", int, default=4, min=1, help="block height: output channels per block"),
            Param("block_cols", int, default=1, min=1, help="block width: inputs per block")),
    source="Xu et al. 2023, SparseByteNN: A Novel Mobile Inference Acceleration Framework Based on "
           "Fine-Grained Group Sparsity; Gray et al. 2017, GPU Kernels for Block-Sparse Weights "
           "(torch.nn.utils.prune)",
    description="fine-grained block (group) sparsity: whole tiles of least L2 magnitude zeroed in each layer",
)


@hookimpl
def harness_register_methods(register):
    """Register ``n-m`` and ``block``."""
    for spec in (NM, BLOCK):
        register(spec)
