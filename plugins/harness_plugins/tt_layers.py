"""The torch module of the ``tensor-train`` method: :class:`TTLinear`, a Linear layer held as a tensor train.

Imports torch at the top: the method imports this module inside ``apply`` only. The class lives at
module level because artifacts are pickled whole.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TTLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` (``out x in``) stored as tensor-train cores, never formed.

    ``cores.k`` has shape ``(r_{k-1}, o_k, i_k, r_k)``, ``r_0 = r_d = 1``; ``out = prod o_k`` and
    ``in = prod i_k``, both in row-major order. The forward pass contracts the input with the cores one
    at a time: the state ``(N, r_{k-1} * i_k, rest)`` meets core ``k`` as a ``(r_{k-1} * i_k, o_k * r_k)``
    matrix, so each step is a transpose, a small matrix product and reshapes (what the ONNX file holds).
    """

    def __init__(self, cores: list[torch.Tensor], bias: torch.Tensor | None):
        super().__init__()
        self.cores = nn.ParameterList(nn.Parameter(c.detach().clone()) for c in cores)
        self.out_dims = [int(c.shape[1]) for c in cores]
        self.in_dims = [int(c.shape[2]) for c in cores]
        self.in_features, self.out_features = math.prod(self.in_dims), math.prod(self.out_dims)
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None

    def weight_matrix(self) -> torch.Tensor:
        """The dense ``out x in`` matrix the cores stand for (for tests and inspection; forward never builds it)."""
        full = self.cores[0]
        for core in list(self.cores)[1:]:
            full = torch.tensordot(full, core, dims=([full.dim() - 1], [0]))
        d = len(self.cores)
        full = full.squeeze(0).squeeze(-1)  # (o_1, i_1, o_2, i_2, ..., o_d, i_d)
        order = [2 * k for k in range(d)] + [2 * k + 1 for k in range(d)]
        return full.permute(order).reshape(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on ``(..., in)`` inputs."""
        lead = x.shape[:-1]
        rest = self.in_features // self.in_dims[0]
        t = x.reshape(-1, self.in_dims[0], rest)  # (N, r_0 * i_1, rest), r_0 = 1
        for k, core in enumerate(self.cores):
            r0, o, i, r1 = core.shape
            g = core.permute(0, 2, 1, 3).reshape(r0 * i, o * r1)
            t = t.transpose(1, 2) @ g  # (N, rest, o_k * r_k)
            t = t.reshape(t.shape[0], rest, o, r1).permute(0, 2, 3, 1)  # (N, o_k, r_k, rest)
            if k + 1 < len(self.cores):
                nxt = self.in_dims[k + 1]
                rest //= nxt
                t = t.reshape(-1, r1 * nxt, rest)
        out = t.reshape(*lead, self.out_features)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        """Sizes and bonds."""
        bonds = [int(c.shape[0]) for c in self.cores] + [1]
        return f"in={self.in_dims}, out={self.out_dims}, bonds={bonds}"
