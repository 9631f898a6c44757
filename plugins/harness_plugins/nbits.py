"""Real low-bit weights in the ONNX file: ``matmul-nbits``, onnxruntime's ``MatMulNBits`` operator.

``onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer`` rewrites every ``MatMul`` with a
constant weight into ``MatMulNBits``: the weight stored packed (two 4-bit codes a byte, or one 8-bit code),
one scale (and, asymmetric, one zero point) per ``block_size`` inputs of an output, dequantized inside
the kernel. The file holds the packed weights, so the size suite's ``onnx_bytes`` is the real size on
disk and every ONNX backend times the real low-bit kernel (block-wise weight-only quantization as in
Dettmers & Zettlemoyer 2023, The case for 4-bit precision: k-bit Inference Scaling Laws; Frantar et al.
2023, GPTQ; Badri & Shaji 2023, HQQ). ``kbit`` keeps measuring the accuracy of the quantization grid on
fake-quantized float weights; this method measures what the grid costs and saves when a runtime runs it.

``torch.onnx.export`` writes a 2-D ``nn.Linear`` as ``Gemm``, which the quantizer leaves alone, so each
``Gemm`` with a constant weight (alpha = beta = 1, no transposed input) is first rewritten as
``MatMul`` (+ ``Add`` for the bias) on the transposed weight: the same arithmetic. Convolutions stay
float (the operator is a matrix product); the claims are about the weights stored quantized.

Speed depends on ``accuracy_level``: at 0 (weight-only, fp32 compute) onnxruntime 1.32's CPU kernel ran a
3 x 2048 MLP no faster than fp32 at batch 32 and 8-bit weights fell to a slow path (0.1-0.3x); at 4 (int8
activations quantized inside the kernel) 4- and 8-bit both ran about 2x faster (2 shared cores, contended).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param

#: ``algorithm`` values and the bit widths each writes in onnxruntime 1.32's quantizer (its RTN and GPTQ
#: routes, from Intel Neural Compressor, write 4-bit codes whatever ``bits`` says, so 8 is refused there).
ALGORITHMS = {"default": (4, 8), "rtn": (4,), "hqq": (4,), "gptq": (4,)}


def gemm_to_matmul(model: Any) -> int:
    """Rewrite, in place, each ``Gemm`` of ``model`` (an ``onnx.ModelProto``) whose weight ``B`` is an
    initializer, with ``alpha = beta = 1`` and ``transA = 0``, as ``MatMul`` on ``B`` (transposed once,
    here, when ``transB``) followed by ``Add`` of ``C``; returns how many were rewritten."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    nodes, done = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or len(node.input) < 2 or node.input[1] not in inits
                or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        a, b = node.input[0], node.input[1]
        weight = numpy_helper.to_array(inits[b])
        if attrs.get("transB", 0):
            weight = weight.T.copy()
        new_b = f"{b}_matmul" if uses.get(b, 0) > 1 else b
        init = numpy_helper.from_array(weight, new_b)
        if new_b == b:
            inits[b].CopyFrom(init)
        else:
            graph.initializer.append(init)
        has_c = len(node.input) > 2 and node.input[2] != ""
        mm_out = f"{node.output[0]}_matmul" if has_c else node.output[0]
        nodes.append(helper.make_node("MatMul", [a, new_b], [mm_out], name=f"{node.name or b}_matmul"))
        if has_c:
            nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]],
                                          name=f"{node.name or b}_bias"))
        done += 1
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return done


def _config(algorithm: str, bits: int, block_size: int, symmetric: bool, accuracy_level: int | None,
            reader: Any) -> Any:
    """The quantizer's algorithm config."""
    from onnxruntime.quantization import matmul_nbits_quantizer as mq

    if algorithm == "default":
        return mq.DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric,
                                               accuracy_level=accuracy_level, bits=bits)
    if algorithm == "hqq":
        return mq.HQQWeightOnlyQuantConfig(block_size=block_size, bits=bits)
    if algorithm == "rtn":
        return mq.RTNWeightOnlyQuantConfig()
    return mq.GPTQWeightOnlyQuantConfig(calibration_data_reader=reader, block_size=block_size)


class _Quiet(logging.Filter):
    """Drops the quantizer's per-node INFO lines (one per skipped node) from the harness's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep warnings and errors only."""
        return record.levelno >= logging.WARNING


def apply_matmul_nbits(ctx: ApplyContext) -> Path:
    """Export to ONNX, turn constant-weight ``Gemm`` into ``MatMul``, and quantize every constant-weight
    ``MatMul`` into ``MatMulNBits`` with ``bits``-bit block-wise weights; returns ``nbits.onnx`` under
    ``ctx.workdir``. GPTQ calibrates on ``splits.calibration``."""
    import numpy as np
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as mq

    from harness_plugins.quantization import calibration_reader

    bits, block = int(ctx.params["bits"]), int(ctx.params["block_size"])
    algorithm = str(ctx.params["algorithm"])
    if bits not in ALGORITHMS[algorithm]:
        widths = "/".join(map(str, ALGORITHMS[algorithm]))
        raise ValueError(f"matmul-nbits: algorithm {algorithm!r} quantizes to {widths} bits in onnxruntime's "
                         f"MatMulNBitsQuantizer, not {bits}")
    if block & (block - 1):
        raise ValueError(f"matmul-nbits: block_size must be a power of two >= 16 (MatMulNBits), got {block}")
    work = Path(ctx.workdir)
    if isinstance(ctx.module, (str, Path)):
        model = onnx.load(str(ctx.module))
    else:
        model = onnx.load(str(ctx.export_onnx(ctx.module, work / "fp32.onnx")))
    gemm_to_matmul(model)
    reader = None
    if algorithm == "gptq":
        name = model.graph.input[0].name
        reader = calibration_reader(name, np.ascontiguousarray(ctx.splits.calibration.x, dtype=np.float32))
    level = int(ctx.params["accuracy_level"]) or None
    cfg = _config(algorithm, bits, block, bool(ctx.params["symmetric"]), level, reader)
    quiet = _Quiet()
    log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    log.addFilter(quiet)
    try:
        quantizer = mq.MatMulNBitsQuantizer(model, bits=bits, block_size=block,
                                            is_symmetric=bool(ctx.params["symmetric"]), accuracy_level=level,
                                            algo_config=cfg)
        quantizer.process()
    finally:
        log.removeFilter(quiet)
    out = work / "nbits.onnx"
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)
    if not any(n.op_type == "MatMulNBits" for n in onnx.load(str(out)).graph.node):
        raise ValueError("matmul-nbits: the model has no MatMul or Gemm with a constant weight to quantize "
                         f"({algorithm}, {bits} bits)")
    return out


def nbits_claims(params: Mapping[str, Any]) -> dict:
    """``bits``-bit codes per block of ``block_size`` inputs, within the weights stored quantized."""
    claims = {"weight_bits": int(params["bits"]), "quantization_group": int(params["block_size"]),
              "weight_scope": "quantized weights", "weight_dtype": "uint8"}
    return claims


MATMUL_NBITS = MethodSpec(
    name="matmul-nbits", apply=apply_matmul_nbits, produces=("onnx",), consumes=("torch", "onnx"),
    claims=nbits_claims,
    params=(Param("bits", int, default=4, choices=(4, 8), help="bits per weight code"),
            Param("block_size", int, default=32, min=16, max=256,
                  help="inputs sharing one scale (and zero point), a power of two"),
            Param("algorithm", str, default="default", choices=tuple(ALGORITHMS),
                  help="default (onnxruntime's block-wise min-max), rtn, hqq (4-bit) or gptq (calibrated)"),
            Param("symmetric", bool, default=True, help="symmetric codes (no zero points); default/rtn only"),
            Param("accuracy_level", int, default=0, min=0, max=4,
                  help="MatMulNBits compute type: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations")),
    source="onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer (Dettmers & Zettlemoyer 2023, "
           "The case for 4-bit precision: k-bit Inference Scaling Laws; Frantar et al. 2023, GPTQ)",
    description="block-wise weight-only quantization to packed 4- or 8-bit MatMulNBits weights in the ONNX file",
)
