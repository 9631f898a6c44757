"""The reference backend: what every other backend's outputs are compared against.

ONNX Runtime's CPU execution provider on the artifact's ONNX file (the runtime VNN-COMP
replays witnesses in), or torch eager on its module when the artifact has no ONNX file or
onnxruntime is not installed. It is host code, not a plugin, so that checking a backend
plugin never compares it with itself.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from harness.specs import Artifact
from harness.timing import InProcessSession

#: Agreement a backend must reach with the reference (on float32 outputs).
ATOL = 1e-4
RTOL = 1e-3


def runtime_for(artifact: Artifact) -> str:
    """``"onnxruntime"`` or ``"torch"``: the runtime the reference uses for ``artifact``."""
    if "onnx" in artifact.formats and importlib.util.find_spec("onnxruntime") is not None:
        return "onnxruntime"
    if "torch" in artifact.formats:
        return "torch"
    raise RuntimeError(f"artifact {artifact.key} has only {'/'.join(artifact.formats)}; the reference "
                       "backend needs onnxruntime for ONNX files")


class ReferenceSession(InProcessSession):
    """A session of the reference backend on one artifact (one thread)."""

    def __init__(self, artifact: Artifact, runtime: str | None = None):
        self.runtime = runtime or runtime_for(artifact)
        if self.runtime == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            self._sess = ort.InferenceSession(str(artifact.file("onnx")), sess_options=opts,
                                              providers=["CPUExecutionProvider"])
            self._input = self._sess.get_inputs()[0].name
            self.info = {"runtime": "onnxruntime", "version": ort.__version__, "threads": 1,
                         "provider": "CPUExecutionProvider", "reference": True}
        else:
            import torch

            self._module = artifact.load_torch()
            self.info = {"runtime": "torch", "version": torch.__version__, "mode": "eager", "reference": True}

    def bind(self, x: Any) -> Callable[[], Any]:
        """A call computing the outputs for ``x`` (float32)."""
        import numpy as np

        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.runtime == "onnxruntime":
            feed = {self._input: x}
            return lambda: self._sess.run(None, feed)[0]
        import torch

        t = torch.from_numpy(x)

        def call() -> Any:
            with torch.inference_mode():
                return self._module(t).numpy()

        return call

    def close(self) -> None:
        """Release the runtime."""
        self._sess = self._module = None


def compare(outputs: Any, reference: Any, atol: float = ATOL, rtol: float = RTOL) -> dict:
    """How far ``outputs`` are from ``reference``: max abs diff, top-1 agreement, within tolerance.

    ``atol`` and ``rtol`` as :func:`numpy.allclose` takes them (the defaults suit float32 outputs;
    the soundness suite loosens them for fp16, bf16 and int8).
    """
    import numpy as np

    a = np.asarray(outputs, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return {"ok": False, "why": f"output shape {a.shape} differs from the reference's {b.shape}"}
    if not np.all(np.isfinite(a)):
        return {"ok": False, "why": "outputs contain NaN or infinity"}
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    flat_a, flat_b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    agree = float(np.mean(flat_a.argmax(1) == flat_b.argmax(1))) if a.size else 1.0
    ok = bool(np.allclose(a, b, atol=atol, rtol=rtol))
    why = "" if ok else f"max abs diff {diff:.3g} exceeds atol {atol:g} + rtol {rtol:g}"
    return {"ok": ok, "max_abs_diff": diff, "top1_agreement": agree, "why": why}
