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
    register_ray_backends(register)


class RayKillerSession(FaultySession):
    """Kills the process that started the cell's worker (a Ray worker, under --executor ray) once or always."""

    def __init__(self, artifact, params):
        super().__init__(artifact, {"mode": "ok"})
        self.marker = params["marker"]
        self.always = params["always"]

    def time(self, batches, plan):
        import signal

        if self.always or not os.path.exists(self.marker):
            open(self.marker, "a").close()
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(60)  # the worker dies with its parent (PR_SET_PDEATHSIG)
        return super().time(batches, plan)


def register_ray_backends(register):
    """Backends for the ray executor's tests: one kills its Ray worker, one needs a resource no node has."""
    register(BackendSpec(name="ray-killer", session=RayKillerSession, accepts=("onnx",),
                         params=(Param("marker", str), Param("always", bool, default=False))))
    register(BackendSpec(name="needs-unicorn", session=FaultySession, accepts=("onnx",),
                         params=(Param("mode", str, default="ok", choices=MODES),),
                         resources=lambda params: {"unicorn": 1}))
