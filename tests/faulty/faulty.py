"""A test plugin whose method and backend fail on purpose: raise, hang, abort the process, exhaust memory."""

import os
import time

from harness.api import BackendSpec, InProcessSession, MethodSpec, Param, hookimpl

MODES = ("ok", "raise", "hang", "abort", "oom")


def misbehave(mode: str) -> None:
    """Fail the way ``mode`` says."""
    if mode == "raise":
        raise RuntimeError("planned failure")
    if mode == "hang":
        time.sleep(3600)
    if mode == "abort":
        os.abort()
    if mode == "oom":
        import numpy as np

        np.ones(int(8e9) // 8)  # 8 GB, past the suite's memory limit


def apply(ctx):
    misbehave(ctx.params["mode"])
    return ctx.module


class FaultySession(InProcessSession):
    """Runs the ONNX model, but misbehaves when asked to time it."""

    def __init__(self, artifact, params):
        import onnxruntime as ort

        self.mode = params["mode"]
        self.sess = ort.InferenceSession(str(artifact.file("onnx")), providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name
        self.info = {"runtime": "faulty", "mode": self.mode}

    def bind(self, x):
        feed = {self.name: x}
        return lambda: self.sess.run(None, feed)[0]

    def time(self, batches, plan):
        misbehave(self.mode)
        return super().time(batches, plan)


@hookimpl
def harness_register_methods(register):
    register(MethodSpec(name="faulty", apply=apply, params=(Param("mode", str, choices=MODES),)))


@hookimpl
def harness_register_backends(register):
    register(BackendSpec(name="faulty-backend", session=FaultySession, accepts=("onnx",),
                         params=(Param("mode", str, choices=MODES),)))
