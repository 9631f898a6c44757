"""Reading an artifact's weights: every parameter tensor of a torch module or an ONNX file, with its
layer, kind (conv or linear weight, other weight, bias), output-channel axis and the value that means
zero (quantized weights' zero points honoured), and the factored layers and output channels where the
format shows them. :mod:`harness.measure.claims` checks a method's claims on what these readers read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ONNX operators whose weight input (index) is a conv or linear weight, and its output-channel axis
#: (``None``: Gemm, decided by ``transB``).
WEIGHT_INPUTS = {"Conv": (1, 0), "ConvInteger": (1, 0), "QLinearConv": (3, 0), "Gemm": (1, None),
                 "MatMul": (1, 1), "MatMulInteger": (1, 1), "QLinearMatMul": (3, 1)}
#: The zero-point input of quantized operators' weights.
WEIGHT_ZERO_POINT = {"ConvInteger": 3, "MatMulInteger": 3, "QLinearConv": 5, "QLinearMatMul": 5}


@dataclass
class Tensor:
    """One weight: its layer, values, output-channel axis, the value that means zero, how stored."""

    layer: str
    values: Any
    axis: int = 0
    zero: float = 0.0
    quantized: bool = False
    kind: str = "conv+linear"  # "conv+linear" | "other weight" | "bias"

    def matrix(self) -> Any:
        """The weight as ``(output channels, inputs)`` (``in x kh x kw`` for a convolution)."""
        import numpy as np

        v = np.asarray(self.values)
        if v.ndim < 2:
            return v.reshape(1, -1)
        return np.moveaxis(v, self.axis, 0).reshape(v.shape[self.axis], -1)


class Reader:
    """The weights of one format of an artifact, with what the checks need to know about them."""

    format = ""

    def tensors(self) -> list[Tensor]:
        """Every parameter tensor (weights, biases) with its kind."""
        raise NotImplementedError

    def factored_pairs(self) -> list[tuple[str, int]] | None:
        """``(name, inner width)`` of each factored layer, or ``None`` when the format cannot tell."""
        return None

    def output_channels(self) -> dict[str, int] | None:
        """``{layer: output channels}`` of conv and linear layers, or ``None``."""
        return None

    def tensor_trains(self) -> list[tuple[str, list[tuple[int, ...]], int]] | None:
        """``(name, core shapes, parameters)`` of each tensor-train layer (a module whose parameter list
        ``cores`` holds 4-D tensors), or ``None`` when the format cannot tell."""
        return None

    def graph(self) -> Any:
        """The ONNX graph, for activation claims (``None`` for a torch module)."""
        return None


class TorchReader(Reader):
    """A torch module's parameters, by module name."""

    format = "torch"

    def __init__(self, module: Any):
        self.module = module

    def tensors(self) -> list[Tensor]:
        import torch

        layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
        out = []
        for name, sub in self.module.named_modules():
            for pname, p in sub.named_parameters(recurse=False):
                values = p.detach().cpu().numpy()
                if pname == "weight" and isinstance(sub, layers):
                    kind = "conv+linear"
                else:
                    kind = "other weight" if values.ndim >= 2 else "bias"
                out.append(Tensor(layer=name if kind == "conv+linear" else f"{name}.{pname}", values=values,
                                  kind=kind))
        return out

    def factored_pairs(self) -> list[tuple[str, int]]:
        import torch

        layers = (torch.nn.Conv2d, torch.nn.Linear)
        pairs = []
        for name, sub in self.module.named_modules():
            children = list(sub.children())
            if isinstance(sub, torch.nn.Sequential) and len(children) == 2 and all(isinstance(c, layers)
                                                                                   for c in children):
                pairs.append((name, int(children[0].weight.shape[0])))
        return pairs

    def tensor_trains(self) -> list[tuple[str, list[tuple[int, ...]], int]]:
        import torch

        out = []
        for name, sub in self.module.named_modules():
            cores = getattr(sub, "cores", None)
            if isinstance(cores, torch.nn.ParameterList) and len(cores) and all(c.dim() == 4 for c in cores):
                out.append((name, [tuple(int(v) for v in c.shape) for c in cores],
                            sum(p.numel() for p in sub.parameters())))
        return out

    def output_channels(self) -> dict[str, int]:
        from harness.measure.analysis import output_channels

        return output_channels(self.module)


class OnnxReader(Reader):
    """An ONNX file's weights: the weight inputs of its conv and linear operators (followed through
    ``DequantizeLinear``), and its other initializers."""

    format = "onnx"

    def __init__(self, path: Path):
        import onnx

        self.model = onnx.load(str(path))

    def graph(self) -> Any:
        return self.model.graph

    def tensors(self) -> list[Tensor]:
        import numpy as np
        from onnx import numpy_helper

        g = self.model.graph
        inits = {i.name: i for i in g.initializer}
        producers = {o: n for n in g.node for o in n.output}

        def scalar(name: str) -> float:
            arr = numpy_helper.to_array(inits[name]) if name in inits else None
            return float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 else 0.0

        found: dict[str, Tensor] = {}
        for node in g.node:
            if node.op_type == "MatMulNBits" and len(node.input) > 1 and node.input[1] in inits:
                found[node.input[1]] = _nbits_tensor(node, numpy_helper.to_array(inits[node.input[1]]))
                continue
            if node.op_type not in WEIGHT_INPUTS:
                continue
            idx, axis = WEIGHT_INPUTS[node.op_type]
            if len(node.input) <= idx:
                continue
            wname, zero, quantized = node.input[idx], 0.0, node.op_type in WEIGHT_ZERO_POINT
            if quantized and len(node.input) > WEIGHT_ZERO_POINT[node.op_type]:
                zero = scalar(node.input[WEIGHT_ZERO_POINT[node.op_type]])
            dq = producers.get(wname)
            if wname not in inits and dq is not None and dq.op_type == "DequantizeLinear":
                wname, quantized = dq.input[0], True
                zero = scalar(dq.input[2]) if len(dq.input) > 2 else 0.0
                axis = next((a.i for a in dq.attribute if a.name == "axis"), axis if axis is not None else 0)
            if wname not in inits or wname in found:
                continue
            if axis is None:
                axis = 0 if next((a.i for a in node.attribute if a.name == "transB"), 0) else 1
            arr = numpy_helper.to_array(inits[wname])
            if arr.ndim < 2:
                continue
            layer = wname
            for suffix in ("_quantized", "_Transposed", "_transposed", ".weight"):
                layer = layer.removesuffix(suffix)
            found[wname] = Tensor(layer=layer, values=arr, axis=axis, zero=zero, quantized=quantized)
        out = list(found.values())
        for name, init in inits.items():
            lowered = name.lower()
            if name in found or "scale" in lowered or "zero_point" in lowered:
                continue
            arr = numpy_helper.to_array(init)
            if not np.issubdtype(arr.dtype, np.floating):
                continue  # shapes and indices, not parameters
            out.append(Tensor(layer=name, values=arr, kind="other weight" if arr.ndim >= 2 else "bias"))
        return out


def _nbits_tensor(node: Any, packed: Any) -> Tensor:
    """The codes of a ``MatMulNBits`` weight (onnxruntime's contrib operator), unpacked to ``(N, K)``.

    ``packed`` is ``uint8 [N, K / block_size, block_size * bits / 8]``, codes packed low bits first; the
    layer's scales (and zero points) live in separate inputs, so the tensor is the codes themselves, as
    stored: at most ``2 ** bits`` distinct values per block of ``block_size`` inputs.
    """
    import numpy as np
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    bits, k, n = int(attrs.get("bits", 4)), int(attrs["K"]), int(attrs["N"])
    per_byte = 8 // bits
    flat = packed.reshape(n, -1).astype(np.uint8)
    codes = np.stack([(flat >> (bits * i)) & ((1 << bits) - 1) for i in range(per_byte)], axis=-1)
    codes = codes.reshape(n, -1)[:, :k]
    name = node.input[1]
    layer = name
    for suffix in ("_Q4", "_Q8", "_Q2", "_quantized", "_matmul", ".weight"):
        layer = layer.removesuffix(suffix)
    return Tensor(layer=layer, values=codes, axis=0, zero=float(1 << (bits - 1)), quantized=True)


def quantization_groups(t: Tensor, granularity: Any) -> list[Any]:
    """A tensor's quantization groups: the whole tensor, each output channel, or runs of ``granularity`` values."""
    import numpy as np

    if granularity in ("per-tensor", "tensor"):
        return [np.asarray(t.values).reshape(-1)]
    rows = t.matrix()
    if isinstance(granularity, int) or (isinstance(granularity, str) and granularity.isdigit()):
        size = int(granularity)
        return [row[i:i + size] for row in rows for i in range(0, len(row), size)]
    return list(rows)  # per output channel (also "per-channel per cluster": clusters share a channel's count)


def on_symmetric_grid(t: Tensor, bits: int, granularity: Any) -> tuple[bool, str]:
    """Whether every group's values are integer multiples of one scale, within +-(2^(bits-1) - 1) levels."""
    import numpy as np

    qmax = 2 ** (bits - 1) - 1
    for g in quantization_groups(t, granularity):
        g = np.asarray(g, dtype=np.float64) - (t.zero if t.quantized else 0.0)
        top = np.abs(g).max()
        if top == 0:
            continue
        q = g / (top / qmax)
        if np.abs(q - np.round(q)).max() > 1e-3:
            return False, f"layer {t.layer}: values off a symmetric {bits}-bit grid"
    return True, ""
