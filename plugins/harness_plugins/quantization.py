"""Post-training quantization with ``onnxruntime.quantization``: ``int8-dynamic`` and ``int8-static``.

- ``int8-dynamic``: ``onnxruntime.quantization.quantize_dynamic``;
- ``int8-static``: ``onnxruntime.quantization.quantize_static``, QDQ format;
following Jacob et al. 2018, Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference, and Wu et al. 2020, Integer Quantization for Deep Learning
Inference: Principles and Empirical Evaluation.

Both methods yield an ONNX file (``produces=("onnx",)``): only backends that run ONNX
can execute them.
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


def calibration_reader(input_name: str, x: Any, batch_size: int = 32) -> Any:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over ``x`` (the calibration split), in batches."""
    from onnxruntime.quantization import CalibrationDataReader

    class CalibrationBatches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = [{input_name: x[i:i + batch_size]} for i in range(0, len(x), batch_size)]
            self.position = 0

        def get_next(self) -> dict | None:
            if self.position >= len(self.batches):
                return None
            self.position += 1
            return self.batches[self.position - 1]

        def rewind(self) -> None:
            self.position = 0

    return CalibrationBatches()


def apply_int8_static(ctx: ApplyContext) -> Path:
    """Export to ONNX, pre-process it (shape inference, graph optimisation), then quantize weights and
    activations to int8 in QDQ format, with activation ranges calibrated on ``splits.calibration``.

    Returns the path of ``int8-static.onnx`` under ``ctx.workdir``.
    """
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    work = Path(ctx.workdir)
    fp32 = ctx.export_onnx(ctx.module, work / "fp32.onnx")
    prepared = work / "fp32-prepared.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=False)
    session = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    del session
    reader = calibration_reader(input_name, np.ascontiguousarray(ctx.splits.calibration.x, dtype=np.float32))
    out = work / "int8-static.onnx"
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[ctx.params["calibration"]]
    hint = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        quantize_static(
            prepared, out, reader, quant_format=QuantFormat.QDQ, per_channel=bool(ctx.params["per_channel"]),
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=method,
        )
    finally:
        root.removeFilter(hint)
    return out


def int8_static_claims(params: Mapping[str, Any]) -> dict:
    """int8 weights and int8 activations with calibrated, fixed ranges, in QDQ format."""
    return {"weight_bits": 8, "weight_dtype": "int8", "activation_bits": 8,
            "activation": "static int8, ranges calibrated on the calibration split", "format": "QDQ",
            "granularity": "per-channel" if params["per_channel"] else "per-tensor"}


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


INT8_STATIC = MethodSpec(
    name="int8-static", apply=apply_int8_static, produces=("onnx",), claims=int8_static_claims,
    params=(
        Param("per_channel", bool, default=True, help="one weight scale per output channel"),
        Param("calibration", str, default="minmax", choices=("minmax", "entropy", "percentile"),
              help="how activation ranges are chosen from the calibration split"),
    ),
    source="onnxruntime.quantization.quantize_static, QDQ format (Jacob et al. 2018, Quantization and "
           "Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference; Wu et al. 2020, "
           "Integer Quantization for Deep Learning Inference: Principles and Empirical Evaluation)",
    description="static post-training quantization: int8 weights and activations, ranges calibrated "
                "on the calibration split",
)


@hookimpl
def harness_register_methods(register):
    """Register ``int8-dynamic``, ``int8-static`` and ``matmul-nbits`` (:mod:`harness_plugins.nbits`, registered
    here so the distribution's entry points stay as they are)."""
    from harness_plugins.nbits import MATMUL_NBITS

    register(INT8_DYNAMIC)
    register(INT8_STATIC)
    register(MATMUL_NBITS)
