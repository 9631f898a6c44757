"""The tensor-train claims, checked on the layers a torch artifact holds as tensor trains.

A tensor-train layer (a matrix product operator) is a module with a parameter list ``cores`` of 4-D
tensors ``(r_{k-1}, o_k, i_k, r_k)``: ``r_0 = r_d = 1``, each core's last bond the next one's first, and
the matrix it stands for ``(o_1 ... o_d) x (i_1 ... i_d)``. :func:`checks` measures, layer by layer:

- ``max_bond_dimension``: every internal bond is at most the claim (and the chain is well formed);
- ``tt_layer_params``: the layer's parameters are its cores' sizes (plus a bias vector) and fewer than
  the dense matrix it replaces; the measured value is the layer's parameter count.
"""

from __future__ import annotations

import math
from typing import Any

#: The claims this module checks.
CLAIMS = ("max_bond_dimension", "tt_layer_params")


def _chain(shapes: list[tuple[int, ...]]) -> str:
    """What is wrong with a chain of core shapes, or ``""``."""
    if not shapes or any(len(s) != 4 for s in shapes):
        return "cores are not 4-D"
    if shapes[0][0] != 1 or shapes[-1][3] != 1:
        return "the outer bonds are not 1"
    if any(a[3] != b[0] for a, b in zip(shapes, shapes[1:])):
        return "adjacent cores' bonds differ"
    return ""


def checks(layers: list[tuple[str, list[tuple[int, ...]], int]], key: str, claimed: Any) -> list[tuple]:
    """``(claim, claimed, measured, ok, detail)`` per layer for ``key``; ``layers`` are ``(name, core shapes,
    parameter count)``. No tensor-train layer at all is one failed check."""
    if not layers:
        return [(key, claimed, None, False, "no tensor-train layer (a module with 4-D `cores`) in the artifact")]
    out = []
    for name, shapes, params in layers:
        fault = _chain(shapes)
        bonds = [s[3] for s in shapes[:-1]]
        if key == "max_bond_dimension":
            ok = not fault and max(bonds, default=1) <= int(claimed)
            out.append((f"{key}[{name}]", claimed, max(bonds, default=1), ok, fault or f"bonds {bonds}"))
        else:
            cores = sum(math.prod(s) for s in shapes)
            dense = math.prod(s[1] for s in shapes) * math.prod(s[2] for s in shapes)
            out_features = math.prod(s[1] for s in shapes)
            ok = not fault and params in (cores, cores + out_features) and cores < dense
            out.append((f"{key}[{name}]", claimed, params, ok,
                        fault or f"cores hold {cores} parameters, the dense matrix {dense}"))
    return out
