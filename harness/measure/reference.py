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

from harness.measure.timing import InProcessSession
from harness.plugin.specs import Artifact

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
            self._names = [i.name for i in self._sess.get_inputs()]
            self.info = {"runtime": "onnxruntime", "version": ort.__version__, "threads": 1,
                         "provider": "CPUExecutionProvider", "reference": True}
        else:
            import torch

            self._module = artifact.load_torch()
            self.info = {"runtime": "torch", "version": torch.__version__, "mode": "eager", "reference": True}

    def bind(self, x: Any) -> Callable[[], Any]:
        """A call computing the outputs for ``x`` (an array, or a feed of named arrays)."""
        from harness.core.inputs import named, torch_args

        if self.runtime == "onnxruntime":
            feed = named(x, self._names)
            return lambda: self._sess.run(None, feed)[0]
        import torch

        args = torch_args(x)

        def call() -> Any:
            with torch.inference_mode():
                return self._module(*args).numpy()

        return call

    def close(self) -> None:
        """Release the runtime."""
        self._sess = self._module = None


def compare_outputs(outputs: Any, reference: Any, atol: float = ATOL, rtol: float = RTOL, top1: bool = True) -> dict:
    """How far ``outputs`` are from ``reference``: max abs diff, top-1 agreement, within tolerance.

    ``atol`` and ``rtol`` as :func:`numpy.allclose` takes them (the defaults suit float32 outputs;
    the soundness suite loosens them for fp16, bf16 and int8). Top-1 agreement is the share of
    rows whose arg-max over the last axis matches: one per sample for ``(N, classes)`` logits, one
    per position for a language model's ``(N, T, vocab)``; with ``top1=False`` (embeddings, whose
    largest coordinate means nothing) it is left out.
    """
    import numpy as np

    a = np.asarray(outputs, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return {"ok": False, "why": f"output shape {a.shape} differs from the reference's {b.shape}"}
    if not np.all(np.isfinite(a)):
        return {"ok": False, "why": "outputs contain NaN or infinity"}
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    ok = bool(np.allclose(a, b, atol=atol, rtol=rtol))
    why = "" if ok else f"max abs diff {diff:.3g} exceeds atol {atol:g} + rtol {rtol:g}"
    res = {"ok": ok, "max_abs_diff": diff, "why": why}
    if top1:
        rows_a = a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(len(a), -1)
        rows_b = b.reshape(-1, b.shape[-1]) if b.ndim >= 2 else b.reshape(len(b), -1)
        res["top1_agreement"] = float(np.mean(rows_a.argmax(1) == rows_b.argmax(1))) if a.size else 1.0
    return res
