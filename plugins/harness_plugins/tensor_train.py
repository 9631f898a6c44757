"""``tensor-train``: Linear layers as tensor trains (matrix product operators), as CompactifAI does
(Tomut et al. 2024, CompactifAI: Extreme Compression of Large Language Models using Quantum-Inspired
Tensor Networks; Novikov et al. 2015, Tensorizing Neural Networks).

A Linear weight ``W`` (``out x in``) is seen as a tensor of shape ``(o_1, ..., o_d, i_1, ..., i_d)`` with
``out = o_1 ... o_d`` and ``in = i_1 ... i_d`` (each size split into ``cores`` balanced factors) and
decomposed by tensorly's TT-SVD for matrices (``tensorly.decomposition.tensor_train_matrix``) into ``d``
cores ``G_k`` of shape ``(r_{k-1}, o_k, i_k, r_k)`` with ``r_0 = r_d = 1`` and every bond ``r_k`` at
most ``bond``. The layer becomes a :class:`TTLinear` holding the cores (``cores.0`` ...) and the
original bias; its forward pass contracts the input with one core after another (a reshape, a
transpose and a small matrix product per core), so the ONNX file is that chain of small contractions,
never the dense matrix. A layer is decomposed only when its cores hold fewer parameters than ``W``.
Fewer parameters are not fewer multiply-adds: the middle cores cost about ``r^2`` times a slice of the
layer, so on 384-wide layers with 3 cores bond 16 takes about 5 times the dense layer's arithmetic and
bond 32 about 20 times; 2 cores at bond ``r`` take ``r (in o_2 + i_1 out)`` multiply-adds per row, against
a rank-``r`` factorization's ``r (in + out)`` at about the same parameter count. The latency suite measures
what that costs.

CompactifAI heals the decomposed model with a short retraining: put ``finetune`` after it in a
pipeline (``{ pipeline = [{ name = "tensor-train", bond = 8 }, { name = "finetune", epochs = 2 }] }``).

Claims: ``max_bond_dimension`` (every internal bond of every decomposed layer) and
``tt_layer_params`` (each decomposed layer's parameters are its cores' sizes, fewer than the dense
matrix it replaces), both measured on the artifact's torch module by the host's claims checker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, hookimpl

SCOPE = "Linear layers that the decomposition makes smaller (the others stay dense)"


def factorize(n: int, parts: int) -> list[int]:
    """``n`` as ``parts`` factors as equal as its prime factors allow, largest first (1s pad a short one)."""
    primes, m, p = [], n, 2
    while p * p <= m:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    if m > 1:
        primes.append(m)
    bins = [1] * parts
    for q in sorted(primes, reverse=True):
        bins[bins.index(min(bins))] *= q
    return sorted(bins, reverse=True)


def tt_params(out_dims: list[int], in_dims: list[int], bond: int) -> tuple[list[int], int]:
    """The bonds TT-SVD reaches at most ``bond`` (capped by the unfoldings' ranks) and the cores' parameter count."""
    d = len(out_dims)
    bonds = [1]
    for k in range(1, d):
        left = 1
        for j in range(k):
            left *= out_dims[j] * in_dims[j]
        right = 1
        for j in range(k, d):
            right *= out_dims[j] * in_dims[j]
        bonds.append(min(bond, left, right))
    bonds.append(1)
    return bonds, sum(bonds[k] * out_dims[k] * in_dims[k] * bonds[k + 1] for k in range(d))


def decompose(weight: Any, out_dims: list[int], in_dims: list[int], bond: int) -> list[Any]:
    """The TT cores ``(r_{k-1}, o_k, i_k, r_k)`` of ``weight`` (``out x in``), by tensorly's ``tensor_train_matrix``."""
    import numpy as np
    import torch
    from tensorly.decomposition import tensor_train_matrix

    bonds, _ = tt_params(out_dims, in_dims, bond)
    w = weight.detach().double().cpu().numpy().reshape(*out_dims, *in_dims)
    tt = tensor_train_matrix(w, bonds)
    return [torch.from_numpy(np.ascontiguousarray(core)).float() for core in tt.factors]


def apply_tensor_train(ctx: ApplyContext) -> Any:
    """Replace every Linear layer whose tensor train is smaller by a :class:`TTLinear` (see the module)."""
    from torch import nn

    from harness_plugins.tt_layers import TTLinear

    module = ctx.module
    bond, parts = int(ctx.params["bond"]), int(ctx.params["cores"])
    decomposed = 0
    for name, layer in [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]:
        out_dims, in_dims = factorize(layer.out_features, parts), factorize(layer.in_features, parts)
        _, count = tt_params(out_dims, in_dims, bond)
        if count >= layer.out_features * layer.in_features:
            continue
        cores = decompose(layer.weight, out_dims, in_dims, bond)
        new = TTLinear(cores, layer.bias.detach().clone() if layer.bias is not None else None)
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, new)
        decomposed += 1
    if not decomposed:
        raise ValueError(f"tensor-train: no Linear layer gets smaller at bond={bond}, cores={parts}")
    return module


def tt_claims(params: Mapping[str, Any]) -> dict:
    """Every bond at most ``bond``; each decomposed layer holds its cores' parameters, fewer than dense."""
    return {"max_bond_dimension": int(params["bond"]), "tt_layer_params": "cores only, fewer than the dense matrix",
            "tt_cores": int(params["cores"]), "bond_scope": SCOPE}


TENSOR_TRAIN = MethodSpec(
    name="tensor-train", apply=apply_tensor_train, claims=tt_claims,
    params=(
        Param("bond", int, default=8, min=1, help="maximum bond dimension (TT rank) between cores"),
        Param("cores", int, default=3, min=2, max=6, help="cores per layer: each size split into this many factors"),
    ),
    source="Tomut et al. 2024, CompactifAI: Extreme Compression of Large Language Models using Quantum-Inspired "
           "Tensor Networks; Novikov et al. 2015, Tensorizing Neural Networks "
           "(tensorly.decomposition.tensor_train_matrix)",
    description="Linear layers decomposed into tensor trains (MPOs) of bounded bond dimension; heal with "
                "finetune in a pipeline",
)


@hookimpl
def harness_register_methods(register):
    """Register ``tensor-train``."""
    register(TENSOR_TRAIN)
