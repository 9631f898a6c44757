"""Helpers shared by the method plugins: which layers to compress, their weights as matrices, masks.

No heavy imports at module level: torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import Param

#: The scope every pruning and quantization method works on and states in its claims.
SCOPE = "conv+linear weights"


def sparsity_param(help: str = f"share of {SCOPE} set to zero, in [0, 1)") -> Param:
    """The ``sparsity`` parameter the pruning methods share."""
    return Param("sparsity", float, min=0.0, max=1.0, max_exclusive=True, help=help)


def sparsity_claims(params: Mapping[str, Any]) -> dict:
    """The share of zeros promised over the conv and linear weights."""
    return {"sparsity": float(params["sparsity"]), "sparsity_scope": SCOPE}


def prunable(module: Any) -> list[tuple[Any, str]]:
    """``(layer, "weight")`` for every Conv2d and Linear layer of ``module``, in module order."""
    from torch import nn

    targets = [(m, "weight") for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not targets:
        raise ValueError(f"nothing to compress: {type(module).__name__} has no Conv2d or Linear layer")
    return targets


def named_layers(module: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` for every Conv2d and Linear layer, in module order (names as in ``named_modules``)."""
    from torch import nn

    layers = [(n, m) for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ValueError(f"nothing to compress: {type(module).__name__} has no Conv2d or Linear layer")
    return layers


def as_matrix(weight: Any) -> Any:
    """A Linear or Conv2d weight as the matrix it multiplies: ``(out, in * kh * kw)`` (a view)."""
    return weight.reshape(weight.shape[0], -1)


def apply_masks(masks: list[tuple[Any, Any]]) -> None:
    """Zero the weights outside each ``(layer, mask)`` pair's mask, through ``torch.nn.utils.prune``.

    ``custom_from_mask`` installs the mask and ``prune.remove`` folds it into a plain weight, so the
    artifact is an ordinary module with zeros in it (as the magnitude methods leave theirs).
    """
    from torch.nn.utils import prune

    for layer, mask in masks:
        prune.custom_from_mask(layer, "weight", mask.reshape(layer.weight.shape).to(layer.weight.dtype))
        prune.remove(layer, "weight")


def rowwise_mask(score: Any, sparsity: float) -> Any:
    """Keep-mask that prunes the lowest-scoring entries of each row of ``score`` (2-D).

    Wanda's comparison group is one output row. The layer prunes ``round(sparsity * numel)``
    entries in all, spread as evenly as the rows allow (the first rows take one more), so the
    layer's sparsity is the requested one to within one weight.
    """
    import torch

    rows, cols = score.shape
    total = round(sparsity * rows * cols)
    base, extra = divmod(total, rows)
    per_row = torch.full((rows,), base, dtype=torch.long)
    per_row[:extra] += 1
    order = score.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(cols).expand(rows, cols).contiguous())
    return ranks >= per_row[:, None]


def output_layer(module: Any, input_shape: tuple[int, ...]) -> Any:
    """The Conv2d or Linear layer that runs last in a forward pass: the classifier, kept whole by
    structured methods."""
    import torch
    from torch import nn

    seen: list[Any] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: seen.append(mod))
             for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            module.eval()(torch.zeros((1, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        raise ValueError(f"{type(module).__name__} runs no Conv2d or Linear layer")
    return seen[-1]


def calibration_batch(module: Any, splits: Any) -> tuple[Any, Any]:
    """The calibration split as tensors ``(x, y)``; ``y`` is the model's own predictions when the
    dataset's labels mean nothing (``labelled=False``) or are missing."""
    import numpy as np
    import torch

    split = splits.calibration
    x = torch.from_numpy(np.ascontiguousarray(split.x))
    if splits.labelled and split.y is not None:
        return x, torch.from_numpy(np.ascontiguousarray(split.y)).long()
    with torch.no_grad():
        return x, module.eval()(x).argmax(1)
