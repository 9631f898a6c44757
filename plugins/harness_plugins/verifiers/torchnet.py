"""A :class:`~harness_plugins.verifiers.network.Network` as a differentiable torch function (for PGD)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness_plugins.verifiers.network import Affine, Network, Relu


def to_torch(net: Network) -> Callable[[Any], Any]:
    """``forward(x)``: (M, n_inputs) float64 tensors to (M, n_outputs)."""
    import torch

    ops = []
    for op in net.ops:
        if isinstance(op, Affine):
            ops.append(("affine", torch.tensor(op.w, dtype=torch.float64), torch.tensor(op.b, dtype=torch.float64)))
        elif isinstance(op, Relu):
            ops.append(("relu",))
        else:
            ops.append(("maxpool", torch.tensor(op.groups)))

    def forward(x: Any) -> Any:
        h = x.reshape(x.shape[0], -1)
        for op in ops:
            if op[0] == "affine":
                h = h @ op[1].T + op[2]
            elif op[0] == "relu":
                h = torch.relu(h)
            else:
                h = h[:, op[1]].max(dim=2).values
        return h

    return forward
