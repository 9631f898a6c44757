"""Checking a method's claims against its artifact (the soundness suite's first question).

A method declares claims (``MethodSpec.claims``, stored in the artifact's manifest); this module
measures each on every format of the artifact (the torch module, the ONNX file as backends run
it) and says whether it holds:

- ``sparsity``: share of zeros within ``sparsity_scope`` (``conv+linear weights``, the default;
  ``weights``: every tensor of two or more dimensions; ``all parameters``), within 0.5
  percentage points, or half a weight per layer where layers are too small for that.
- ``layer_sparsity``: a number (every layer in scope) or ``{layer: sparsity}``, per layer, same
  tolerance.
- ``channel_sparsity``: share of output channels that are entirely zero, over the scope's layers.
- ``weight_bits``: at most ``2 ** bits`` distinct values per quantization group of every weight in
  scope; ``quantization_group`` is ``channel`` (default: each output channel), ``tensor``, or a
  group size (consecutive values within an output channel). ONNX artifacts are read through their
  quantized initializers (the weight inputs of ``ConvInteger``, ``MatMulInteger``,
  ``QLinear*`` and ``DequantizeLinear``).
- ``weight_dtype``: the element type of the quantized weights (``int8``, ``uint8``, ``int4``...).

Any other key is reported as *unchecked*: never silently passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How far a measured sparsity may be from the claim.
SPARSITY_TOL = 0.005
DEFAULT_SCOPE = "conv+linear weights"
SCOPES = ("conv+linear weights", "weights", "all parameters")
#: Claim keys that qualify another claim rather than being claims themselves.
MODIFIERS = ("sparsity_scope", "quantization_group")
#: ONNX operators whose weight input (index) is a conv or linear weight, and its output-channel axis.
WEIGHT_INPUTS = {"Conv": (1, 0), "ConvInteger": (1, 0), "QLinearConv": (3, 0), "ConvTranspose": (1, 1),
                 "Gemm": (1, None), "MatMul": (1, 1), "MatMulInteger": (1, 1), "QLinearMatMul": (3, 1)}
#: The zero-point input of quantized operators' weights.
WEIGHT_ZERO_POINT = {"ConvInteger": 3, "MatMulInteger": 3, "QLinearConv": 5, "QLinearMatMul": 5}


@dataclass
class Tensor:
    """One weight in scope: its layer, values, output-channel axis and the value that means zero."""

    layer: str
    values: Any
    axis: int = 0
    zero: float = 0.0
    dtype: str = "float32"
    quantized: bool = False


@dataclass
class Check:
    """One claim checked on one format."""

    claim: str
    claimed: Any
    measured: Any
    ok: bool
    format: str
    detail: str = ""

    def as_dict(self) -> dict:
        """JSON-able form."""
        return {"claim": self.claim, "claimed": self.claimed, "measured": self.measured, "ok": self.ok,
                "format": self.format, "detail": self.detail}


@dataclass
class Report:
    """Every claim's checks, and the keys that could not be checked."""

    checks: list[Check] = field(default_factory=list)
    unchecked: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """All checked claims hold."""
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]


# ------------------------------------------------------------------ reading weights


def torch_tensors(module: Any, scope: str) -> list[Tensor]:
    """Weights in ``scope`` of a torch module, by layer (module) name."""
    import torch

    out = []
    for name, sub in module.named_modules():
        for pname, p in sub.named_parameters(recurse=False):
            values = p.detach().cpu().numpy()
            layer = name or type(module).__name__
            if scope == "conv+linear weights":
                keep = pname == "weight" and isinstance(sub, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
                                                               torch.nn.Linear))
            elif scope == "weights":
                keep = values.ndim >= 2
            else:
                keep = True
                layer = f"{layer}.{pname}"
            if keep:
                out.append(Tensor(layer=layer, values=values, axis=0, dtype=str(values.dtype)))
    return out


def _layer_name(init_name: str) -> str:
    name = init_name
    for suffix in ("_quantized", "_Transposed", "_transposed", ".weight", "_weight"):
        name = name.removesuffix(suffix) if name.endswith(suffix) else name
    return name


def onnx_tensors(path: Path, scope: str) -> list[Tensor]:
    """Weights in ``scope`` of an ONNX model: initializers, followed through ``DequantizeLinear``."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    tensors: dict[str, Tensor] = {}

    def scalar(name: str) -> float:
        if name in inits:
            arr = numpy_helper.to_array(inits[name])
            if arr.size == 1:
                return float(arr.reshape(-1)[0])
        return 0.0

    for node in model.graph.node:
        if node.op_type not in WEIGHT_INPUTS:
            continue
        idx, axis = WEIGHT_INPUTS[node.op_type]
        if len(node.input) <= idx:
            continue
        wname = node.input[idx]
        zero, quantized = 0.0, node.op_type in WEIGHT_ZERO_POINT
        if node.op_type in WEIGHT_ZERO_POINT and len(node.input) > WEIGHT_ZERO_POINT[node.op_type]:
            zero = scalar(node.input[WEIGHT_ZERO_POINT[node.op_type]])
        dq = producers.get(wname)
        if wname not in inits and dq is not None and dq.op_type == "DequantizeLinear":
            wname, quantized = dq.input[0], True
            zero = scalar(dq.input[2]) if len(dq.input) > 2 else 0.0
        if wname not in inits or wname in tensors:
            continue
        if axis is None:  # Gemm: output channels are rows when B is transposed
            trans = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axis = 0 if trans else 1
        arr = numpy_helper.to_array(inits[wname])
        tensors[wname] = Tensor(layer=_layer_name(wname), values=arr, axis=axis, zero=zero,
                                dtype=str(arr.dtype), quantized=quantized)
    if scope == "conv+linear weights":
        return list(tensors.values())
    out = list(tensors.values())
    for name, init in inits.items():
        if name in tensors or "scale" in name.lower() or "zero_point" in name.lower():
            continue
        arr = numpy_helper.to_array(init)
        if not np.issubdtype(arr.dtype, np.floating) and name not in tensors:
            continue  # shapes and indices, not parameters
        if scope == "weights" and arr.ndim < 2:
            continue
        out.append(Tensor(layer=name, values=arr, axis=0, dtype=str(arr.dtype)))
    return out


# ------------------------------------------------------------------ measuring


def _zeros(t: Tensor) -> int:
    import numpy as np

    return int(np.count_nonzero(t.values == t.zero))


def _tolerance(tensors: list[Tensor], counts: list[int]) -> float:
    """0.5 points, or half a weight per layer when layers are too small to get that close."""
    total = sum(counts)
    return max(SPARSITY_TOL, 0.5 * len(tensors) / total) if total else SPARSITY_TOL


def _channels(t: Tensor) -> Any:
    import numpy as np

    v = np.moveaxis(np.asarray(t.values), t.axis, 0) if np.asarray(t.values).ndim > 1 else np.asarray(t.values)[None]
    return v.reshape(v.shape[0], -1)


def _groups(t: Tensor, group: Any) -> list[Any]:
    import numpy as np

    if group == "tensor":
        return [np.asarray(t.values).reshape(-1)]
    rows = _channels(t)
    if group == "channel":
        return list(rows)
    size = int(group)
    return [row[i:i + size] for row in rows for i in range(0, len(row), size)]


def check_claims(claims: dict, formats: dict[str, Any]) -> Report:
    """Check ``claims`` on each format: ``formats`` maps a format name to a ``scope -> [Tensor]`` reader."""
    import numpy as np

    report = Report()
    scope = claims.get("sparsity_scope", DEFAULT_SCOPE)
    group = claims.get("quantization_group", "channel")
    for key, claimed in claims.items():
        if key in MODIFIERS:
            continue
        if key in ("sparsity", "layer_sparsity", "channel_sparsity") and scope not in SCOPES:
            report.unchecked[key] = f"unknown sparsity_scope {scope!r} (known: {', '.join(SCOPES)})"
            continue
        if key not in ("sparsity", "layer_sparsity", "channel_sparsity", "weight_bits", "weight_dtype"):
            report.unchecked[key] = "no check for this claim"
            continue
        for fmt, read in formats.items():
            tensors = read(scope if key != "weight_bits" and key != "weight_dtype" else DEFAULT_SCOPE)
            if not tensors:
                report.checks.append(Check(key, claimed, None, False, fmt, f"no weights in scope {scope!r}"))
                continue
            if key == "sparsity":
                sizes = [int(np.asarray(t.values).size) for t in tensors]
                measured = sum(_zeros(t) for t in tensors) / sum(sizes)
                tol = _tolerance(tensors, sizes)
                report.checks.append(Check(key, claimed, round(measured, 6), abs(measured - claimed) <= tol, fmt,
                                           f"over {scope}, tolerance {tol:.4f}"))
            elif key == "layer_sparsity":
                for t in tensors:
                    want = claimed.get(t.layer) if isinstance(claimed, dict) else claimed
                    if want is None:
                        continue
                    size = int(np.asarray(t.values).size)
                    measured = _zeros(t) / size
                    tol = max(SPARSITY_TOL, 0.5 / size)
                    report.checks.append(Check(f"layer_sparsity[{t.layer}]", want, round(measured, 6),
                                               abs(measured - want) <= tol, fmt, f"tolerance {tol:.4f}"))
            elif key == "channel_sparsity":
                rows = [_channels(t) for t in tensors]
                counts = [len(r) for r in rows]
                zero_rows = sum(int(np.all(r == t.zero, axis=1).sum()) for r, t in zip(rows, tensors))
                measured = zero_rows / sum(counts)
                tol = _tolerance(tensors, counts)
                report.checks.append(Check(key, claimed, round(measured, 6), abs(measured - claimed) <= tol, fmt,
                                           f"all-zero output channels over {scope}, tolerance {tol:.4f}"))
            elif key == "weight_bits":
                limit = 2 ** int(claimed)
                worst, where = 0, ""
                for t in tensors:
                    most = max(len(np.unique(g)) for g in _groups(t, group))
                    if most > worst:
                        worst, where = most, t.layer
                report.checks.append(Check(key, claimed, worst, worst <= limit, fmt,
                                           f"most distinct values in one {group} group: {worst} (layer {where}); "
                                           f"at most {limit} allowed"))
            else:
                if fmt != "onnx":
                    continue  # element types are the ONNX file's; a torch module holds floats
                quantized = [t for t in tensors if t.quantized]
                dtypes = sorted({t.dtype for t in quantized}) or sorted({t.dtype for t in tensors})
                ok = bool(quantized) and dtypes == [str(claimed)]
                report.checks.append(Check(key, claimed, ",".join(dtypes), ok, fmt,
                                           f"{len(quantized)} of {len(tensors)} weights quantized"))
    return report


def check_artifact(artifact: Any) -> Report:
    """Check the claims in an artifact's manifest on each of its formats."""
    claims = dict(artifact.manifest.get("claims") or {})
    formats: dict[str, Any] = {}
    if "torch" in artifact.formats:
        module = artifact.load_torch()
        formats["torch"] = lambda scope: torch_tensors(module, scope)
    if "onnx" in artifact.formats:
        path = artifact.file("onnx")
        formats["onnx"] = lambda scope: onnx_tensors(path, scope)
    report = check_claims(claims, formats)
    if "weight_dtype" in claims and not any(c.claim == "weight_dtype" for c in report.checks):
        report.unchecked["weight_dtype"] = "element types are read from an ONNX file; the artifact has none"
    return report
