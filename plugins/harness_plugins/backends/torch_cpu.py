"""The ``torch-cpu`` backend: eager PyTorch on the CPU, timed in-process."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

from harness.api import CPU_CORES, Artifact, BackendSpec, InProcessSession, Param, hookimpl, torch_args


class TorchCPUSession(InProcessSession):
    """An artifact's torch module in eval mode, run eagerly under ``torch.inference_mode``.

    ``torch.set_num_threads`` is process-wide: the session sets it on open and restores the
    previous value on :meth:`close`.
    """

    def __init__(self, artifact: Artifact, threads: int):
        import torch

        self._torch = torch
        self._prev_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        self.module = artifact.load_torch()
        self.info = {"runtime": "torch", "version": torch.__version__, "threads": threads,
                     "mode": "eager", "device": "cpu"}

    def bind(self, x: Any) -> Callable[[], Any]:
        """A call running the module on ``x`` (an array, or a feed of named arrays passed in order),
        converted to tensors once, here."""
        args = torch_args(x)
        module = self.module
        inference_mode = self._torch.inference_mode

        def call() -> Any:
            with inference_mode():
                return module(*args).numpy()

        return call

    def close(self) -> None:
        """Drop the module and restore the thread count found on open."""
        self.module = None
        self._torch.set_num_threads(self._prev_threads)


def open_session(artifact: Artifact, params: Mapping[str, Any]) -> TorchCPUSession:
    """Open a session on the artifact's torch module."""
    return TorchCPUSession(artifact, int(params["threads"]))


def available() -> tuple[bool, str]:
    """Whether torch is installed (checked without importing it, which takes seconds)."""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    return True, ""


def fingerprint(params: Mapping[str, Any]) -> dict:
    """The torch build and threading this backend measures with."""
    import torch

    return {"torch": torch.__version__, "threads": int(params["threads"]),
            "mkldnn": bool(torch.backends.mkldnn.is_available())}


TORCH_CPU = BackendSpec(
    name="torch-cpu", session=open_session, accepts=("torch",), available=available,
    fingerprint=fingerprint,
    params=(Param("threads", int, default=1, min=1, max=CPU_CORES, help="torch intra-op threads"),),
    description="PyTorch eager mode on the CPU (torch.inference_mode), timed in-process",
)


@hookimpl
def harness_register_backends(register):
    """Register ``torch-cpu`` and its sparse-kernel variant ``torch-sparse-cpu``
    (:mod:`harness_plugins.backends.torch_sparse`, registered here so the distribution's entry points stay as
    they are)."""
    from harness_plugins.backends.torch_sparse import TORCH_SPARSE_CPU

    register(TORCH_CPU)
    register(TORCH_SPARSE_CPU)
