"""Static figures of a model: parameters, non-zeros and FLOPs (ShrinkBench's definitions).

FLOPs come from ``torch.utils.flop_counter`` on a batch-1 forward pass; the
non-zero FLOPs scale each Conv/Linear layer's FLOPs by the density of its
weight, as ShrinkBench does, and the theoretical speedup is their ratio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def torch_param_counts(module: Any) -> dict:
    """``params`` and ``nonzero_params`` over every parameter of a torch module, and ``weights`` /
    ``nonzero_weights`` over the tensors of two or more dimensions (kernels and matrices: what
    pruning methods prune and claim sparsity of)."""
    total = nonzero = weights = nonzero_weights = 0
    for p in module.parameters():
        nz = int((p.detach() != 0).sum())
        total += p.numel()
        nonzero += nz
        if p.dim() >= 2:
            weights += p.numel()
            nonzero_weights += nz
    return {"params": total, "nonzero_params": nonzero, "weights": weights, "nonzero_weights": nonzero_weights}


def onnx_param_counts(path: Path) -> dict:
    """``params``, ``nonzero_params``, ``weights`` and ``nonzero_weights`` over an ONNX model's initializers.

    Quantization scales and zero points (scalars and per-channel vectors feeding
    QuantizeLinear-style ops) are bookkeeping, not weights: only initializers with
    two or more dimensions (weights) and one-dimensional ones that are not scale or
    zero-point tensors (biases) are counted.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    total = nonzero = weights = nonzero_weights = 0
    for init in model.graph.initializer:
        name = init.name.lower()
        if len(init.dims) == 0 or "scale" in name or "zero_point" in name:
            continue
        arr = numpy_helper.to_array(init)
        if not np.issubdtype(arr.dtype, np.number):
            continue
        nz = int(np.count_nonzero(arr))
        total += arr.size
        nonzero += nz
        if arr.ndim >= 2:
            weights += arr.size
            nonzero_weights += nz
    return {"params": total, "nonzero_params": nonzero, "weights": weights, "nonzero_weights": nonzero_weights}


def flop_counts(module: Any, input_shape: tuple[int, ...], example: Any = None) -> dict:
    """Dense and non-zero FLOPs of one batch-1 forward pass, per ShrinkBench.

    ``example`` is one sample (an array or a feed of named arrays, see :mod:`harness.inputs`);
    without it, zeros of ``(1, *input_shape)``. Returns ``flops``, ``nonzero_flops`` and ``layers``
    (per Conv/Linear module: flops and weight density).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.inputs import torch_args

    args = torch_args(example) if example is not None else (torch.zeros((1, *input_shape)),)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*args)
    total = int(counter.get_total_flops())
    per_module = counter.get_flop_counts()
    layers = {}
    nonzero = total
    for name, sub in module.named_modules():
        if not isinstance(sub, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
            continue
        key = f"{type(module).__name__}.{name}" if name else type(module).__name__
        counts = per_module.get(key) or per_module.get(name) or {}
        flops = int(sum(counts.values()))
        w = sub.weight.detach()
        density = float((w != 0).sum()) / w.numel()
        layers[name] = {"flops": flops, "density": density}
        nonzero -= flops - int(round(flops * density))
    return {"flops": total, "nonzero_flops": nonzero, "layers": layers}
