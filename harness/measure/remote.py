"""The runner protocol: backends whose runtime is not the harness's Python process.

A *runner* is a program in the target runtime (Node.js with onnxruntime-web, Python with
onnxruntime on an aarch64 device, ...) that reads requests on its standard input and writes
responses on its standard output, one *frame* each:

    frame  = u32 big-endian length of the header | header (JSON, UTF-8) | blob bytes ...
    header = {"op": ..., ..., "blobs": [{"dtype": "float32", "shape": [...], "nbytes": N, ...}, ...]}

A blob is a C-contiguous little-endian array of ``dtype`` (``float32``, ``int64`` or ``int32``) and
``shape``. Input blobs also carry ``name``, the model input they feed: a model with several inputs
(a transformer's ``input_ids`` and ``attention_mask``, int64) gets one blob per input. A runner
feeds blobs to the model's inputs by name, or by position when the names do not match the
model's (a single unnamed image input is sent as ``input``).

Requests and their responses (every response has ``"ok": true``, or ``"ok": false`` and ``"error"``):

- ``hello`` -> ``protocol``, ``runtime``, ``version``, ``features`` (device facts for the fingerprint)
- ``load`` (``threads``; blob 0: the ONNX model's bytes) -> ``info`` (runtime, version, threads, provider)
- ``run`` (blobs: one named input blob per model input, one batch) -> blob 0: the first output, float32
- ``time`` (``plan``: a :class:`harness.measure.timing.TimingPlan` as a dict; blobs: the distinct input
  batches to rotate among, each blob's ``batch`` saying which batch it belongs to, 0, 1, ...)
  -> ``samples_s``, ``inner_loops``, ``warmup_iters``, ``timer``, ``info``
- ``outputs`` (blobs: input batches, as for ``time``) -> blobs: the output of each batch, computed by the very call
  the ``time`` loop times (the soundness suite's TEST01 audit compares them with ``run``'s). A
  runner that does not implement it answers ``ok: false`` and the audit records it as not run.
- ``close`` -> the runner exits

Protocol 2 added names, integer dtypes and the ``batch`` index (protocol 1 carried one float32
input per batch). Protocol 3 times every call by itself where the clock allows (per-query samples;
``info["sampling"]`` says which) and adds the clock's resolution and overhead to ``hello``.

Timing happens inside the runner, by its own clock, following the same plan as in-process
backends (warm-up until stable, calibrated inner loop, minimum samples and time): the frames
carry only the samples, so IPC and serialization never enter a latency figure. A runner for
another runtime (TFLite, an Android device over adb) implements these requests; a backend
plugin starts it with :class:`RunnerSession` and any command that connects to its stdin/stdout
(``node runner.mjs``, ``ssh host python3 runner.py``, ``chroot ROOT qemu-aarch64-static ...``).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

from harness.core.errors import HarnessError
from harness.measure.timing import TimingPlan, TimingResult

PROTOCOL = 3


class RunnerError(HarnessError, RuntimeError):
    """A runner refused a request or died; the message carries its error or its stderr."""


class RunnerSession:
    """A :class:`harness.api.Session` whose runtime is a runner process.

    :param command: the command that starts the runner (its stdin/stdout carry the frames).
    :param model: the ONNX model's bytes, sent with ``load``.
    :param threads: the runtime's thread count.
    :param info: extra facts recorded with every measurement (transport, emulated, ...).
    """

    def __init__(self, command: Sequence[str], model: bytes, threads: int, *, info: dict | None = None,
                 env: dict | None = None, cwd: str | None = None):
        self._stderr = tempfile.TemporaryFile()
        self.command = list(command)
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env=env, cwd=cwd)
        except OSError as exc:
            raise RunnerError(f"cannot start runner {self.command[0]!r}: {exc}") from exc
        hello = self.request({"op": "hello"})[0]
        if hello.get("protocol") != PROTOCOL:
            raise RunnerError(f"runner speaks protocol {hello.get('protocol')}, the harness {PROTOCOL}")
        self.hello = hello
        loaded = self.request({"op": "load", "threads": threads}, [({"kind": "model"}, model)])[0]
        self.info = {**loaded.get("info", {}), "features": hello.get("features", {}), **(info or {})}
        if isinstance(hello.get("clock"), dict):  # the device clock's resolution and overhead (protocol 3)
            self.info["clock"] = hello["clock"]

    # -------------------------------------------------------------- framing

    def _send(self, header: dict, blobs: Sequence[tuple[dict, bytes]] = ()) -> None:
        header = dict(header, blobs=[dict(d, nbytes=len(b)) for d, b in blobs])
        data = json.dumps(header).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            for _, b in blobs:
                self.proc.stdin.write(b)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise RunnerError(f"runner died: {self._tail()}") from exc

    def _read_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.proc.stdout.read(n - len(buf))
            if not chunk:
                self.proc.wait(timeout=5)
                raise RunnerError(f"runner exited with status {self.proc.returncode}: {self._tail()}")
            buf += chunk
        return buf

    def _recv(self) -> tuple[dict, list[bytes]]:
        (n,) = struct.unpack(">I", self._read_exact(4))
        header = json.loads(self._read_exact(n))
        blobs = [self._read_exact(b["nbytes"]) for b in header.get("blobs", [])]
        return header, blobs

    def request(self, header: dict, blobs: Sequence[tuple[dict, bytes]] = ()) -> tuple[dict, list[bytes]]:
        """Send one request and return the response (raises :class:`RunnerError` on ``ok: false``)."""
        self._send(header, blobs)
        resp, data = self._recv()
        if not resp.get("ok"):
            raise RunnerError(f"runner refused {header['op']}: {resp.get('error')}")
        return resp, data

    def _tail(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text[-2000:] or "(no output on stderr)"

    # -------------------------------------------------------------- Session

    @staticmethod
    def _blobs(x: Any, **extra: Any) -> list[tuple[dict, bytes]]:
        """One named blob per input of a batch (an array or a feed of named arrays)."""
        from harness.core.inputs import named

        return [({"name": name, "dtype": str(arr.dtype), "shape": list(arr.shape), **extra}, arr.tobytes())
                for name, arr in named(x).items()]

    def run(self, x: Any) -> Any:
        """Outputs for one batch, computed by the runner."""
        import numpy as np

        resp, data = self.request({"op": "run"}, self._blobs(x))
        desc = resp["blobs"][0]
        return np.frombuffer(data[0], dtype=desc["dtype"]).reshape(desc["shape"])

    def time(self, batches: Sequence[Any], plan: TimingPlan) -> TimingResult:
        """Time inside the runner, rotating among ``batches``."""
        blobs = [blob for i, b in enumerate(batches) for blob in self._blobs(b, batch=i)]
        resp, _ = self.request({"op": "time", "plan": plan.as_dict()}, blobs)
        info = dict(resp.get("info", {}))
        # The model ran in the runner's process (Node, a remote or emulated host): this process's CPU clock
        # did not see its work, and the runner protocol carries no CPU time.
        info.setdefault("cpu_time_absent", f"timed in a runner process ({resp['timer']}): its CPU time is not "
                                           "measured there")
        return TimingResult(samples_s=[float(v) for v in resp["samples_s"]], inner_loops=int(resp["inner_loops"]),
                            warmup_iters=int(resp["warmup_iters"]), timer=resp["timer"], info=info)

    def timed_outputs(self, batches: Sequence[Any]) -> list[Any]:
        """The outputs of the runner's timed call on each batch (the ``outputs`` request)."""
        import numpy as np

        blobs = [blob for i, b in enumerate(batches) for blob in self._blobs(b, batch=i)]
        resp, data = self.request({"op": "outputs"}, blobs)
        return [np.frombuffer(d, dtype=desc["dtype"]).reshape(desc["shape"]) for desc, d in zip(resp["blobs"], data)]

    def close(self) -> None:
        """Ask the runner to exit; kill it if it does not."""
        if self.proc.poll() is None:
            try:
                self.request({"op": "close"})
            except RunnerError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        self._stderr.close()

    def __del__(self) -> None:  # a session dropped without close() must not leave a runner behind
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


def runner_files() -> dict[str, str]:
    """The files of the Python onnxruntime runner: ``{name: path}`` to copy to a device."""
    here = os.path.dirname(os.path.abspath(__file__))
    return {"onnx_runner.py": os.path.join(here, "programs", "onnx_runner.py"),
            "timing.py": os.path.join(here, "timing.py"),
            "timingplan.py": os.path.join(os.path.dirname(here), "plugin", "timingplan.py")}
