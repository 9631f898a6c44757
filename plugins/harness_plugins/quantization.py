"""Post-training quantization with ``onnxruntime.quantization``: ``int8-dynamic``.

The method yields an ONNX file (``produces=("onnx",)``): only backends that run ONNX
can execute it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.api import ApplyContext, MethodSpec, Param, hookimpl


class _DropPreprocessHint(logging.Filter):
    """Drops onnxruntime's 'Please consider to run pre-processing' warning.

    The hint goes to the root logger on every call; the exported graph is already
    optimised by the exporter, so it is noise in the harness's logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the pre-processing hint."""
        return "consider to run pre-processing" not in record.getMessage()


def apply_int8_dynamic(ctx: ApplyContext) -> Path:
    """Export the module to ONNX, then quantize its weights to int8 (activations quantized at run time).

    Convolutions become ``ConvInteger`` and matrix products (``MatMul``/``Gemm``) become
    ``MatMulInteger``; returns the path of ``int8.onnx`` under ``ctx.workdir``. A model that is
    an ONNX file already (``ctx.module`` a path) is quantized as it is.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if isinstance(ctx.module, (str, Path)):
        fp32 = Path(ctx.module)
    else:
        fp32 = ctx.export_onnx(ctx.module, Path(ctx.workdir) / "fp32.onnx")
    int8 = Path(ctx.workdir) / "int8.onnx"
    hint = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        quantize_dynamic(
            Path(fp32), int8,
            weight_type=QuantType.QInt8,
            per_channel=bool(ctx.params["per_channel"]),
            reduce_range=bool(ctx.params["reduce_range"]),
        )
    finally:
        root.removeFilter(hint)
    return int8


def int8_claims(params: Mapping[str, Any]) -> dict:
    """int8 weights; activations quantized to uint8 per call from their observed range."""
    return {"weight_bits": 8, "weight_dtype": "int8", "activation": "dynamic uint8"}


INT8_DYNAMIC = MethodSpec(
    name="int8-dynamic", apply=apply_int8_dynamic, produces=("onnx",), consumes=("torch", "onnx"),
    claims=int8_claims,
    params=(
        Param("per_channel", bool, default=False, help="one weight scale per output channel"),
        Param("reduce_range", bool, default=False,
              help="7-bit weights, for CPUs without VNNI where 8-bit products can saturate"),
    ),
    source="onnxruntime.quantization.quantize_dynamic (Jacob et al. 2018, Quantization and Training "
           "of Neural Networks for Efficient Integer-Arithmetic-Only Inference)",
    description="dynamic post-training quantization: int8 weights, uint8 activations quantized at run time",
)


@hookimpl
def harness_register_methods(register):
    """Register ``int8-dynamic``."""
    register(INT8_DYNAMIC)
