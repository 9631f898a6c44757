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


def output_channels(module: Any) -> dict[str, int]:
    """``{layer name: output channels}`` of every Conv and Linear layer, in module order."""
    import torch

    layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    return {name: int(m.weight.shape[0]) for name, m in module.named_modules() if isinstance(m, layers)}


def flop_counts(module: Any, input_shape: tuple[int, ...], example: Any = None) -> dict:
    """Dense and non-zero FLOPs of one batch-1 forward pass, per ShrinkBench.

    ``example`` is one sample (an array or a feed of named arrays, see :mod:`harness.core.inputs`);
    without it, zeros of ``(1, *input_shape)``. Returns ``flops``, ``nonzero_flops`` and ``layers``
    (per Conv/Linear module: flops and weight density).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.core.inputs import torch_args

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


def theoretical_speedup(analysis: dict) -> float | None:
    """ShrinkBench's theoretical speedup: the dense reference model's FLOPs over the artifact's non-zero FLOPs.

    ``reference_flops`` (the uncompressed model the method started from) is the numerator when the
    analysis has it, so a method that really shrinks layers (structured pruning, low-rank
    factorization) is credited for the FLOPs it removed; for methods that keep the architecture it
    equals ``flops``.
    """
    dense = analysis.get("reference_flops") or analysis.get("flops")
    nonzero = analysis.get("nonzero_flops")
    return dense / nonzero if dense and nonzero else None


def torch_packed_size(module: Any, encodings: dict | None = None) -> dict:
    """Packed size of a torch module's tensors at their stored bit widths.

    A parameter recorded in ``encodings`` (see :class:`harness.plugin.specs.WeightEncoding`) counts its
    packed codes, index bits, scales and zero points; every other parameter and buffer counts its
    dtype's bytes. Sparse formats are not assumed.

    Returns ``packed_bytes`` (all tensors), ``bits_per_weight`` (code and index bits per element of
    the weight kernels and matrices, tensors of two or more dimensions: the scope of the sparsity
    figures) and ``tensors`` (``{name: bits}`` per weight tensor).
    """
    from harness.plugin.specs import WeightEncoding

    encodings = encodings or {}
    packed = 0
    weight_bits = weight_count = 0
    tensors: dict[str, float] = {}
    named = list(module.named_parameters()) + list(module.named_buffers())
    for name, p in named:
        n = p.numel()
        if name in encodings:
            enc = WeightEncoding.from_dict(encodings[name])
            packed += enc.packed_bytes(n)
            bits = enc.bits + enc.index_bits
        else:
            packed += n * p.element_size()
            bits = p.element_size() * 8
        if p.dim() >= 2 and p.is_floating_point():
            weight_bits += n * bits
            weight_count += n
            tensors[name] = bits
    unknown = sorted(set(encodings) - {name for name, _ in named})
    if unknown:
        raise ValueError(f"encodings name tensors the module does not have: {', '.join(unknown)}")
    return {"packed_bytes": packed, "bits_per_weight": weight_bits / weight_count if weight_count else None,
            "tensors": tensors}


def onnx_packed_size(path: Path) -> dict:
    """Packed size of an ONNX model's initializers at their stored types (int8 weights: one byte each).

    ``packed_bytes`` sums every numeric initializer but int64 ones (shapes and axes, not model data);
    ``bits_per_weight`` averages the bits of the weight initializers (two or more dimensions) per element.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    packed = weight_bits = weight_count = 0
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.int64:
            continue
        packed += arr.nbytes
        name = init.name.lower()
        if arr.ndim >= 2 and "scale" not in name and "zero_point" not in name:
            weight_bits += arr.size * arr.dtype.itemsize * 8
            weight_count += arr.size
    return {"packed_bytes": packed, "bits_per_weight": weight_bits / weight_count if weight_count else None}


def peak_forward_memory(module: Any, args: tuple) -> dict:
    """Peak tensor memory of one batch-1 forward pass of a torch module on CPU, on ``args`` (one sample
    of the test split, as torch tensors: an image, or token ids and a mask).

    Tracked per tensor storage by torch's ``MemTracker`` (``torch.distributed._tools.mem_tracker``):
    the highest total, over the pass, of the bytes held by parameters, buffers, the input and the
    activations alive at that moment. This is what the model itself needs; process RSS is not used
    because the interpreter and torch (hundreds of MB) hide a small model's needs entirely.

    Returns ``{"peak_bytes", "by_kind": {...}, "method"}``; raises ImportError when the tracker is
    missing from this torch build.
    """
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker

    module = module.eval()
    tracker = MemTracker()
    tracker.track_external(module, *args)
    with torch.no_grad(), tracker:
        module(*args)
    snapshot = tracker.get_tracker_snapshot("peak")
    per_device = snapshot.get(torch.device("cpu"), {})
    by_kind = {str(getattr(k, "value", k)): int(v) for k, v in per_device.items() if k != "Total"}
    return {"peak_bytes": int(per_device.get("Total", 0)), "by_kind": by_kind,
            "method": "torch.distributed._tools.mem_tracker.MemTracker, batch 1, CPU, no_grad"}
