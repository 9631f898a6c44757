"""An onnxruntime runner speaking the harness runner protocol on stdin/stdout.

Standalone: needs Python 3.10+, numpy and onnxruntime, and ``timing.py`` (a copy of
``harness/measure/timing.py``) beside it or the harness installed. Used by the ``arm`` backend on an
aarch64 device, over ssh, or in an emulated root; see :mod:`harness.measure.remote` for the protocol.
"""

from __future__ import annotations

import ctypes
import json
import platform
import struct
import sys

try:
    from harness.measure.timing import TimingPlan, clock_resolution, measure_clock, run_plan
except ImportError:  # copied beside timing.py onto a device
    from timing import TimingPlan, clock_resolution, measure_clock, run_plan  # type: ignore[no-redef]

PROTOCOL = 3
# Linux arm64 hardware capabilities (arch/arm64/include/uapi/asm/hwcap.h).
HWCAP = {"asimd": 1 << 1, "asimddp": 1 << 20, "sve": 1 << 22, "asimdfhm": 1 << 23}
HWCAP2 = {"sve2": 1 << 1, "i8mm": 1 << 13, "bf16": 1 << 14}


def cpu_features() -> dict:
    """The aarch64 features that decide int8 and bf16 kernels, from getauxval (works under qemu-user too)."""
    if platform.machine() not in ("aarch64", "arm64"):
        return {"machine": platform.machine()}
    try:
        libc = ctypes.CDLL(None)
        libc.getauxval.restype = ctypes.c_ulong
        hw, hw2 = libc.getauxval(16), libc.getauxval(26)  # AT_HWCAP, AT_HWCAP2
    except (OSError, AttributeError):
        return {"machine": platform.machine()}
    feats = {name: bool(hw & bit) for name, bit in HWCAP.items()}
    feats.update({name: bool(hw2 & bit) for name, bit in HWCAP2.items()})
    feats["machine"] = platform.machine()
    return feats


def read_frame(stream) -> tuple[dict, list[bytes]] | None:
    """One frame: a big-endian u32 header length, the JSON header, then each blob's bytes."""
    raw = stream.read(4)
    if len(raw) < 4:
        return None
    (n,) = struct.unpack(">I", raw)
    header = json.loads(stream.read(n))
    blobs = [stream.read(b["nbytes"]) for b in header.get("blobs", [])]
    return header, blobs


def write_frame(stream, header: dict, blobs: list[tuple[dict, bytes]] = ()) -> None:
    """Write one frame (blobs as (description, bytes) pairs)."""
    header = dict(header, blobs=[dict(d, nbytes=len(b)) for d, b in blobs])
    data = json.dumps(header).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    for _, b in blobs:
        stream.write(b)
    stream.flush()


def timed_call(session):
    """The call the timing loop makes on each feed (``outputs`` runs it too, for TEST01)."""
    return session.run


def feeds_of(names: list[str], descs: list[dict], arrays: list) -> list[dict]:
    """Group input blobs into feeds, one per ``batch`` index (0 when absent), keyed by the model's
    input names: by the blobs' names when they match the model's, else by position."""
    groups: dict[int, list] = {}
    for desc, arr in zip(descs, arrays):
        groups.setdefault(int(desc.get("batch", 0)), []).append((desc.get("name"), arr))
    feeds = []
    for i in sorted(groups):
        pairs = groups[i]
        if {n for n, _ in pairs} == set(names):
            feeds.append(dict(pairs))
        elif len(pairs) == len(names):
            feeds.append({name: arr for name, (_, arr) in zip(names, pairs)})
        else:
            raise ValueError(f"the model takes inputs {names}; got {[n for n, _ in pairs]}")
    return feeds


def time_session(session, feeds: list, plan: TimingPlan):
    """Time ``session.run`` rotating among ``feeds`` with the harness's plan, by this process's clock."""
    import time

    run = timed_call(session)
    clock = time.perf_counter_ns
    k = len(feeds)

    def block(n: int, offset: int) -> float:
        t0 = clock()
        for j in range(offset, offset + n):
            run(None, feeds[j % k])
        return (clock() - t0) / 1e9

    return run_plan(block, plan, timer="time.perf_counter_ns (runner)", resolution_s=clock_resolution())


def main() -> None:
    """Serve requests until ``close`` or end of input."""
    import numpy as np
    import onnxruntime as ort

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    session = None
    names: list[str] = []

    def array(desc: dict, data: bytes):
        return np.ascontiguousarray(np.frombuffer(data, dtype=desc["dtype"]).reshape(desc["shape"]))

    while True:
        frame = read_frame(stdin)
        if frame is None:
            return
        req, blobs = frame
        op = req.get("op")
        try:
            if op == "hello":
                write_frame(stdout, {"ok": True, "protocol": PROTOCOL, "runtime": "onnxruntime",
                                     "version": ort.__version__, "python": platform.python_version(),
                                     "features": cpu_features(), "clock": measure_clock()})
            elif op == "load":
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = int(req["threads"])
                opts.inter_op_num_threads = 1
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                session = ort.InferenceSession(blobs[0], sess_options=opts, providers=["CPUExecutionProvider"])
                names = [i.name for i in session.get_inputs()]
                write_frame(stdout, {"ok": True, "info": {"runtime": "onnxruntime", "version": ort.__version__,
                                                          "threads": int(req["threads"]),
                                                          "provider": session.get_providers()[0],
                                                          "graph_optimization": "all"}})
            elif op == "run":
                feed = feeds_of(names, req["blobs"], [array(d, b) for d, b in zip(req["blobs"], blobs)])[0]
                out = session.run(None, feed)[0]
                out = np.ascontiguousarray(out, dtype=np.float32)
                write_frame(stdout, {"ok": True}, [({"dtype": "float32", "shape": list(out.shape)}, out.tobytes())])
            elif op == "time":
                feeds = feeds_of(names, req["blobs"], [array(d, b) for d, b in zip(req["blobs"], blobs)])
                res = time_session(session, feeds, TimingPlan(**req["plan"]))
                write_frame(stdout, {"ok": True, "samples_s": res.samples_s, "inner_loops": res.inner_loops,
                                     "warmup_iters": res.warmup_iters, "timer": res.timer, "info": res.info})
            elif op == "outputs":
                run = timed_call(session)
                feeds = feeds_of(names, req["blobs"], [array(d, b) for d, b in zip(req["blobs"], blobs)])
                outs = [np.ascontiguousarray(run(None, feed)[0], dtype=np.float32) for feed in feeds]
                write_frame(stdout, {"ok": True}, [({"dtype": "float32", "shape": list(o.shape)}, o.tobytes())
                                                   for o in outs])
            elif op == "close":
                write_frame(stdout, {"ok": True})
                return
            else:
                write_frame(stdout, {"ok": False, "error": f"unknown op {op!r}"})
        except Exception as exc:  # reported to the harness, which raises it in the cell
            write_frame(stdout, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main()
