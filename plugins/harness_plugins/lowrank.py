"""Low-rank factorization: ``svd`` replaces Linear and Conv2d layers by two smaller ones (Denton et al.
2014, Exploiting Linear Structure Within Convolutional Networks for Efficient Evaluation; Jaderberg et
al. 2014, Speeding up Convolutional Neural Networks with Low Rank Expansions).

A weight seen as its matrix ``W`` (``out x in*kh*kw``) is factored by a truncated SVD,
``W ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T)``: a Linear becomes ``Linear(in, r) -> Linear(r, out)``, a
convolution becomes a ``r``-filter convolution with the original kernel, stride and padding
followed by a 1x1 convolution to ``out`` channels (the original bias goes to the second layer).
A layer is factored only when the two factors hold fewer parameters than the original; the
others stay as they are. The decomposition is ``torch.linalg.svd``; the layer surgery is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, hookimpl
from harness_plugins._layers import as_matrix, named_layers

SCOPE = "conv+linear layers that factoring makes smaller (the others stay dense)"


def choose_rank(singular_values: Any, rank: int, energy: float) -> int:
    """``rank`` when given (capped at the matrix's rank), else the fewest singular values whose squares keep
    at least ``energy`` of their sum."""
    import torch

    if rank > 0:
        return min(rank, len(singular_values))
    sq = singular_values.double() ** 2
    kept = torch.cumsum(sq, 0) / sq.sum()
    return int(torch.searchsorted(kept, torch.tensor(energy, dtype=kept.dtype) - 1e-12)) + 1


def factor(layer: Any, rank: int, energy: float) -> tuple[Any, int] | None:
    """The two-layer replacement of ``layer`` and its rank, or ``None`` when factoring would not save
    parameters (or the layer is a grouped or non-zero-padded convolution)."""
    import torch
    from torch import nn

    w = as_matrix(layer.weight.detach())
    out_f, in_f = w.shape
    if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
        return None
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    r = choose_rank(s, rank, energy)
    if r * (out_f + in_f) >= out_f * in_f:
        return None
    root = s[:r].sqrt()
    first = (root[:, None] * vh[:r]).float()  # (r, in)
    second = (u[:, :r] * root[None, :]).float()  # (out, r)
    has_bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        a, b = nn.Linear(in_f, r, bias=False), nn.Linear(r, out_f, bias=has_bias)
        a.weight.data.copy_(first)
        b.weight.data.copy_(second)
    else:
        a = nn.Conv2d(layer.in_channels, r, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                      dilation=layer.dilation, bias=False)
        b = nn.Conv2d(r, out_f, 1, bias=has_bias)
        a.weight.data.copy_(first.reshape(r, *layer.weight.shape[1:]))
        b.weight.data.copy_(second.reshape(out_f, r, 1, 1))
    if has_bias:
        b.bias.data.copy_(layer.bias.detach())
    return nn.Sequential(a, b), r


def apply_svd(ctx: ApplyContext) -> Any:
    """Factor every Conv2d and Linear layer where it saves parameters; by ``rank`` or by retained ``energy``."""
    module = ctx.module
    rank, energy = int(ctx.params["rank"]), float(ctx.params["energy"])
    factored = 0
    for name, layer in named_layers(module):
        result = factor(layer, rank, energy)
        if result is None:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, result[0])
        factored += 1
    if not factored:
        raise ValueError(f"svd: no layer gets smaller at rank={rank}, energy={energy}")
    return module


def svd_claims(params: Mapping[str, Any]) -> dict:
    """The rank of each factored layer (at most ``rank``), or the share of spectral energy it keeps."""
    if int(params["rank"]) > 0:
        return {"max_rank": int(params["rank"]), "rank_scope": SCOPE}
    return {"retained_energy": float(params["energy"]), "rank_scope": SCOPE}


SVD = MethodSpec(
    name="svd", apply=apply_svd, claims=svd_claims,
    params=(
        Param("rank", int, default=0, min=0, help="rank of every factored layer (0: choose it by energy)"),
        Param("energy", float, default=0.9, min=0.0, max=1.0, min_exclusive=True,
              help="with rank 0: share of squared singular values each factored layer keeps"),
    ),
    source="Denton et al. 2014, Exploiting Linear Structure Within Convolutional Networks for Efficient "
           "Evaluation; Jaderberg et al. 2014, Speeding up Convolutional Neural Networks with Low Rank "
           "Expansions (torch.linalg.svd)",
    description="truncated-SVD factorization of Linear and Conv2d layers into two smaller layers",
)


@hookimpl
def harness_register_methods(register):
    """Register ``svd``."""
    register(SVD)
