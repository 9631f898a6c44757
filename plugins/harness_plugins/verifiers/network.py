"""An ONNX network read into a list of operations on flat vectors, for the built-in verifiers.

Feed-forward graphs of the operators small verification benchmarks use: ``Gemm``, ``MatMul`` and
``Conv`` with constant weights, ``Add``/``Sub``/``Mul``/``Div`` by constants, ``BatchNormalization``,
``AveragePool`` (all affine), ``Relu``, ``MaxPool``, and the shape-only ``Flatten``, ``Reshape``,
``Identity``, ``Dropout``. Convolutions and pools become dense matrices or index groups over the
flattened (C-order, NCHW) activations, so IBP, CROWN, the MILP encoding and PGD all work on three
kinds of operation: ``Affine``, ``Relu`` and ``MaxPool``. Anything else raises
:class:`Unsupported`, which a verifier turns into an ``unknown`` verdict with the operator's name.

A graph the reader cannot take as it is gets normalized and read again
(:func:`harness.api.normalize_onnx_model`: constants folded, Identity and no-op nodes removed), as
the benchmark reader normalizes every network it hands out; so a plain ``torch.onnx.export`` file
with ``Identity`` nodes on shared initializers reads as its chain. (Normalizing only when needed
keeps onnxscript's import, seconds, out of every verifier process that reads a clean graph.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class Unsupported(ValueError):
    """The network uses an operator (or a form of one) the built-in verifiers do not handle."""


@dataclass
class Affine:
    """``y = w @ x + b`` on flat vectors."""

    w: np.ndarray
    b: np.ndarray


@dataclass
class Relu:
    """``y = max(x, 0)``."""


@dataclass
class MaxPool:
    """``y[g] = max(x[groups[g]])``; ``groups`` is ``(n_out, k)`` indices into the flat input."""

    groups: np.ndarray


@dataclass
class Network:
    """Operations from the flat input (``n_inputs``) to the flat output (``n_outputs``)."""

    ops: list
    input_shape: tuple[int, ...]
    n_inputs: int
    n_outputs: int

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(N, n_outputs)`` for inputs ``(N, n_inputs)`` in float64."""
        h = np.asarray(x, dtype=np.float64).reshape(-1, self.n_inputs)
        for op in self.ops:
            if isinstance(op, Affine):
                h = h @ op.w.T + op.b
            elif isinstance(op, Relu):
                h = np.maximum(h, 0.0)
            else:
                h = h[:, op.groups].max(axis=2)
        return h


def _attrs(node: Any) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv_matrix(k: np.ndarray, in_shape: tuple[int, int, int], strides, pads, dilations) -> tuple[np.ndarray, tuple]:
    """The dense matrix of a 2-D convolution (no bias) and its output shape."""
    o, c, kh, kw = k.shape
    ci, h, w = in_shape
    if c != ci:
        raise Unsupported(f"Conv with {c} input channels on a {ci}-channel input (groups are not supported)")
    sh, sw = strides
    pt, pl, pb, pr = pads
    dh, dw = dilations
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    mat = np.zeros((o * ho * wo, c * h * w))
    oo, cc, yy, xx = np.meshgrid(np.arange(o), np.arange(c), np.arange(ho), np.arange(wo), indexing="ij")
    for i in range(kh):
        for j in range(kw):
            iy = yy * sh - pt + i * dh
            ix = xx * sw - pl + j * dw
            ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            rows = (oo * ho + yy) * wo + xx
            cols = (cc * h + iy) * w + ix
            mat[rows[ok], cols[ok]] += k[oo[ok], cc[ok], i, j]
    return mat, (o, ho, wo)


def _pool_groups(in_shape: tuple[int, int, int], kernel, strides, pads) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Index groups of a 2-D pool, its output shape and each group's count of real (unpadded) inputs."""
    c, h, w = in_shape
    kh, kw = kernel
    sh, sw = strides
    pt, pl, pb, pr = pads
    ho = (h + pt + pb - kh) // sh + 1
    wo = (w + pl + pr - kw) // sw + 1
    groups = np.zeros((c * ho * wo, kh * kw), dtype=np.int64)
    counts = np.zeros(c * ho * wo, dtype=np.int64)
    g = 0
    for ch in range(c):
        for y in range(ho):
            for x in range(wo):
                idx = [(ch * h + iy) * w + ix for iy in range(y * sh - pt, y * sh - pt + kh)
                       for ix in range(x * sw - pl, x * sw - pl + kw) if 0 <= iy < h and 0 <= ix < w]
                if not idx:
                    raise Unsupported("a pooling window that covers only padding")
                counts[g] = len(idx)
                groups[g] = idx + [idx[0]] * (kh * kw - len(idx))  # repeating a member leaves a max unchanged
                g += 1
    return groups, (c, ho, wo), counts


def _broadcast(const: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A constant broadcast over one sample's activation (its leading batch axis dropped if present)."""
    const = np.asarray(const, dtype=np.float64)
    if const.ndim == len(shape) + 1 and const.shape[0] == 1:
        const = const[0]
    try:
        return np.broadcast_to(const, shape).reshape(-1)
    except ValueError:
        raise Unsupported(f"a constant of shape {const.shape} does not broadcast over {shape}") from None


def load_network(path: str | Path) -> Network:
    """Read an ONNX file into a :class:`Network` (normalized when needed); raise :class:`Unsupported`
    for other graphs."""
    import onnx

    from harness.api import normalize_onnx_model

    model = onnx.load(str(path))
    try:
        return read_model(model)
    except Unsupported:
        return read_model(normalize_onnx_model(model))


def read_model(model: Any) -> Network:
    """An ``onnx.ModelProto`` as a :class:`Network`, as it stands; raise :class:`Unsupported` otherwise."""
    from onnx import numpy_helper

    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init).astype(np.float64) if numpy_helper.to_array(init).dtype.kind == "f"
              else numpy_helper.to_array(init) for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise Unsupported(f"{len(inputs)} inputs and {len(graph.output)} outputs (one of each is supported)")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    shape = tuple(dims[1:]) if len(dims) >= 2 else tuple(dims)
    if len(dims) >= 2 and dims[0] not in (None, 1):
        raise Unsupported(f"a fixed batch of {dims[0]}")
    if any(d is None for d in shape):
        raise Unsupported(f"a symbolic dimension in the input shape {dims}")
    n_in = int(np.prod(shape))
    current, cur_shape = inputs[0].name, shape
    ops: list = []

    def affine(w: np.ndarray, b: np.ndarray) -> None:
        if ops and isinstance(ops[-1], Affine):  # fold consecutive affine maps into one (tighter bounds)
            prev = ops.pop()
            w, b = w @ prev.w, w @ prev.b + b
        ops.append(Affine(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)))

    for node in graph.node:
        op, a = node.op_type, _attrs(node)
        if op == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(a["value"])
            continue
        data = [i for i in node.input if i and i not in consts]
        if op == "Shape" or not data:
            raise Unsupported(f"operator {op} on constants or shapes")
        if data[0] != current or len(data) > 1:
            raise Unsupported(f"{op} node {node.name!r}: only a chain of operators is supported (no branches)")
        n = int(np.prod(cur_shape))
        if op == "Gemm":
            if a.get("transA", 0):
                raise Unsupported("Gemm with transA")
            w = consts[node.input[1]].astype(np.float64)
            w = (w if a.get("transB", 0) else w.T) * a.get("alpha", 1.0)
            b = consts[node.input[2]].astype(np.float64).reshape(-1) * a.get("beta", 1.0) if len(node.input) > 2 and \
                node.input[2] else np.zeros(w.shape[0])
            affine(w, np.broadcast_to(b, (w.shape[0],)))
            cur_shape = (w.shape[0],)
        elif op == "MatMul":
            if node.input[0] != current:
                raise Unsupported("MatMul with the constant on the left")
            w = consts[node.input[1]].astype(np.float64)
            if w.ndim != 2 or len(cur_shape) != 1:
                raise Unsupported("MatMul other than vector times matrix")
            affine(w.T, np.zeros(w.shape[1]))
            cur_shape = (w.shape[1],)
        elif op in ("Add", "Sub", "Mul", "Div"):
            other = node.input[1] if node.input[0] == current else node.input[0]
            c = _broadcast(consts[other], cur_shape)
            if op == "Add":
                affine(np.eye(n), c)
            elif op == "Sub":
                affine(np.eye(n) * (1.0 if node.input[0] == current else -1.0),
                       -c if node.input[0] == current else c)
            elif op == "Mul":
                affine(np.diag(c), np.zeros(n))
            else:
                if node.input[0] != current:
                    raise Unsupported("Div of a constant by the activation")
                affine(np.diag(1.0 / c), np.zeros(n))
        elif op == "Conv":
            if a.get("group", 1) != 1 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise Unsupported("Conv with groups or auto_pad")
            k = consts[node.input[1]].astype(np.float64)
            if k.ndim != 4 or len(cur_shape) != 3:
                raise Unsupported("Conv other than 2-D on a (C, H, W) activation")
            mat, out_shape = _conv_matrix(k, cur_shape, a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]),
                                          a.get("dilations", [1, 1]))
            bias = consts[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else \
                np.zeros(k.shape[0])
            affine(mat, np.repeat(bias, out_shape[1] * out_shape[2]))
            cur_shape = out_shape
        elif op == "BatchNormalization":
            scale, bias, mean, var = (consts[node.input[i]].astype(np.float64) for i in range(1, 5))
            g = scale / np.sqrt(var + a.get("epsilon", 1e-5))
            per = int(np.prod(cur_shape[1:])) if len(cur_shape) > 1 else 1
            affine(np.diag(np.repeat(g, per)), np.repeat(bias - mean * g, per))
        elif op in ("MaxPool", "AveragePool"):
            explicit = a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            if len(cur_shape) != 3 or a.get("ceil_mode", 0) or not explicit:
                raise Unsupported(f"{op} other than 2-D, floor mode, explicit pads")
            kernel = a["kernel_shape"]
            groups, out_shape, counts = _pool_groups(cur_shape, kernel, a.get("strides", kernel),
                                                     a.get("pads", [0, 0, 0, 0]))
            if op == "MaxPool":
                if ops and isinstance(ops[-1], MaxPool):
                    raise Unsupported("two MaxPools in a row")
                ops.append(MaxPool(groups))
            else:
                w = np.zeros((len(groups), n))
                denom = counts if not a.get("count_include_pad", 0) else np.full(len(groups), kernel[0] * kernel[1])
                for g, idx in enumerate(groups):
                    w[g, np.unique(idx)] = 1.0 / denom[g]
                affine(w, np.zeros(len(groups)))
            cur_shape = out_shape
        elif op == "Relu":
            ops.append(Relu())
        elif op in ("Flatten", "Reshape", "Identity", "Dropout", "Squeeze", "Unsqueeze"):
            if op == "Reshape":
                target = [int(v) for v in consts[node.input[1]].reshape(-1)]
                rest = [v for v in target[1:]] if len(target) > 1 else target
                if -1 in rest:
                    known = int(np.prod([v for v in rest if v != -1])) or 1
                    rest = [n // known if v == -1 else v for v in rest]
                cur_shape = tuple(rest) if int(np.prod(rest)) == n else (n,)
            elif op == "Flatten":
                cur_shape = (n,)
        else:
            raise Unsupported(f"operator {op}")
        current = node.output[0]
    if current != graph.output[0].name:
        raise Unsupported("the graph's output is not the end of its chain")
    if not ops:
        ops.append(Affine(np.eye(n_in), np.zeros(n_in)))
    n_out = int(np.prod(cur_shape))
    return Network(ops=ops, input_shape=shape, n_inputs=n_in, n_outputs=n_out)
