"""The ``onnxruntime-cpu`` backend: ONNX Runtime's CPU execution provider, timed in-process."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

from harness.api import CPU_CORES, Artifact, BackendSpec, InProcessSession, Param, hookimpl, named

PROVIDER = "CPUExecutionProvider"


class OrtCPUSession(InProcessSession):
    """An ``onnxruntime.InferenceSession`` on the artifact's ONNX file.

    ``threads`` intra-op threads, one inter-op thread (the models are sequential graphs),
    all graph optimisations.
    """

    def __init__(self, artifact: Artifact, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(str(artifact.file("onnx")), sess_options=opts, providers=[PROVIDER])
        self.input_names = [i.name for i in self.sess.get_inputs()]
        self.info = {"runtime": "onnxruntime", "version": ort.__version__, "threads": threads,
                     "provider": self.sess.get_providers()[0], "graph_optimization": "all"}

    def bind(self, x: Any) -> Callable[[], Any]:
        """A call running the session on ``x`` (an array, or a feed of named arrays); the feed is
        built once, here.

        The returned call is ``sess.run`` and nothing else, so timing stays within a few
        percent of a bare ``InferenceSession.run`` loop.
        """
        feed = named(x, self.input_names)
        run = self.sess.run
        return lambda: run(None, feed)[0]

    def close(self) -> None:
        """Release the session."""
        self.sess = None


def open_session(artifact: Artifact, params: Mapping[str, Any]) -> OrtCPUSession:
    """Open a session on the artifact's ONNX file."""
    return OrtCPUSession(artifact, int(params["threads"]))


def available() -> tuple[bool, str]:
    """Whether onnxruntime imports and offers the CPU execution provider."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False, "onnxruntime is not installed"
    try:
        import onnxruntime as ort
    except Exception as e:  # a broken install (missing shared library...) is a reason to skip
        return False, f"onnxruntime does not import: {type(e).__name__}: {e}"
    if PROVIDER not in ort.get_available_providers():
        return False, f"onnxruntime {ort.__version__} has no {PROVIDER}"
    return True, ""


def fingerprint(params: Mapping[str, Any]) -> dict:
    """The onnxruntime build and threading this backend measures with."""
    import onnxruntime as ort

    return {"onnxruntime": ort.__version__, "threads": int(params["threads"]), "provider": PROVIDER,
            "graph_optimization": "all"}


ONNXRUNTIME_CPU = BackendSpec(
    name="onnxruntime-cpu", session=open_session, accepts=("onnx",), available=available,
    fingerprint=fingerprint,
    params=(Param("threads", int, default=1, min=1, max=CPU_CORES, help="onnxruntime intra-op threads"),),
    description="ONNX Runtime, CPU execution provider, all graph optimisations, timed in-process",
)


@hookimpl
def harness_register_backends(register):
    """Register ``onnxruntime-cpu``."""
    register(ONNXRUNTIME_CPU)
