"""The ``torch-cuda`` backend: PyTorch on an NVIDIA GPU, timed with CUDA events on the device.

Two modes, both worth recording because they answer different questions:

- ``eager``: each inference launches its kernels from Python. At small batches this measures
  Python and launch overhead as much as the model (an H100 ran ResNet-18 at batch 1 in 1.68 ms
  eager against 0.48 ms replayed as a CUDA graph).
- ``graph``: each distinct input batch gets its own captured CUDA graph (sharing one memory
  pool), and timing replays them in rotation: no host overhead, no copy into a static buffer
  inside the timed region.

Timing follows the host's plan (:func:`harness.api.run_plan`) with a block clock made of
CUDA events: where one call lasts at least 20x the events' resolution plus the cost of an empty
event pair (measured), each call has its own event pair (per-query samples); below that, one
event pair brackets a calibrated block of calls, so the cost of a pair is amortised. With
``flush_l2`` every call is preceded, outside its event pair, by a write over a buffer twice the
L2 size, so each repetition starts cold.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.api import Artifact, BackendSpec, Param, Skip, TimingPlan, TimingResult, hookimpl, run_plan, torch_args

DTYPES = ("fp32", "fp16", "bf16")
MODES = ("eager", "graph")
COMPILE = ("none", "default", "reduce-overhead", "max-autotune")
#: CUDA events resolve about half a microsecond (CUDA programming guide: cudaEventElapsedTime).
EVENT_RESOLUTION_S = 0.5e-6
#: Replays before capture, on a side stream, as torch.cuda.graphs asks (lazy init, cuDNN autotune).
CAPTURE_WARMUP = 3


def torch_dtype(name: str) -> Any:
    """The torch dtype of ``fp32`` / ``fp16`` / ``bf16``."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


class GraphPool:
    """One captured graph per distinct input batch, replayed in rotation.

    ``capture(fn)`` captures the zero-argument ``fn`` and returns a replay callable; the
    CUDA implementation is :func:`cuda_capture`, any other (an eager stand-in on the CPU)
    keeps the bookkeeping testable without a GPU. ``outputs[i]`` is the static output that
    replay ``i`` refreshes: what a TEST01-style audit compares with accuracy-mode outputs.
    """

    def __init__(self, module: Callable[[Any], Any], inputs: Sequence[Any],
                 capture: Callable[[Callable[[], Any]], tuple[Callable[[], None], Any]]):
        if not inputs:
            raise ValueError("GraphPool needs at least one input batch")
        self.inputs = list(inputs)
        self.replays: list[Callable[[], None]] = []
        self.outputs: list[Any] = []
        for x in self.inputs:
            replay, out = capture(lambda x=x: module(x))
            self.replays.append(replay)
            self.outputs.append(out)

    def __len__(self) -> int:
        return len(self.replays)

    def block(self, n: int, offset: int) -> None:
        """Replay ``n`` graphs in rotation starting at ``offset``."""
        k = len(self.replays)
        for j in range(offset, offset + n):
            self.replays[j % k]()

    def replayed_outputs(self) -> list[Any]:
        """Replay each graph once and copy its static output right after (the graphs share one memory
        pool, so a later replay may reuse an earlier output's memory): TEST01's timed outputs."""
        outs = []
        for i in range(len(self.replays)):
            self.block(1, i)
            outs.append(self.outputs[i].float().cpu().numpy().copy())
        return outs


def cuda_capture(stream: Any, pool_holder: dict) -> Callable[[Callable[[], Any]], tuple[Callable[[], None], Any]]:
    """A capture function for :class:`GraphPool`: warm up on ``stream``, capture, share one memory pool."""
    import torch

    def capture(fn: Callable[[], Any]) -> tuple[Callable[[], None], Any]:
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(CAPTURE_WARMUP):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool_holder.get("pool")):
            out = fn()
        pool_holder.setdefault("pool", graph.pool())
        return graph.replay, out

    return capture


class TorchCudaSession:
    """An artifact's torch module on a CUDA device, in the requested dtype, mode and compilation."""

    def __init__(self, artifact: Artifact, params: Mapping[str, Any]):
        import torch

        if params["mode"] == "graph" and params["compile"] in ("reduce-overhead", "max-autotune"):
            raise Skip(f"torch.compile mode {params['compile']} captures CUDA graphs itself; "
                       "pair it with mode = \"eager\"")
        self.torch = torch
        self.params = dict(params)
        self.device = torch.device("cuda", int(params["device"]))
        self.dtype = torch_dtype(params["dtype"])
        # cuDNN runs fp32 convolutions in TensorFloat-32 unless told not to (torch's default): ~10
        # mantissa bits, 0.02 off on digits logits on an H200. fp32 means fp32 unless tf32 is asked for.
        torch.backends.cudnn.allow_tf32 = bool(params["tf32"])
        torch.backends.cuda.matmul.allow_tf32 = bool(params["tf32"])
        module = artifact.load_torch().to(self.device, self.dtype).eval()
        if params["compile"] != "none":
            module = torch.compile(module, mode=None if params["compile"] == "default" else params["compile"])
        self.module = module
        props = torch.cuda.get_device_properties(self.device)
        self.l2_bytes = int(getattr(props, "L2_cache_size", 0) or 50 * 2**20)
        self.info = {"runtime": "torch", "version": torch.__version__, "cuda": torch.version.cuda,
                     "device": props.name, "dtype": params["dtype"], "mode": params["mode"],
                     "compile": params["compile"], "flush_l2": bool(params["flush_l2"]), "tf32": bool(params["tf32"]),
                     "threads": torch.get_num_threads()}

    def _to_device(self, x: Any) -> tuple:
        """The module's positional arguments on the device: float inputs in the compute dtype,
        integer inputs (token ids, masks) kept integer."""
        return tuple(t.to(self.device, self.dtype) if t.is_floating_point() else t.to(self.device)
                     for t in torch_args(x))

    def _call(self, args: tuple) -> Any:
        return self.module(*args)

    def run(self, x: Any) -> Any:
        """Outputs for one batch, as float32 numpy."""
        with self.torch.inference_mode():
            return self._call(self._to_device(x)).float().cpu().numpy()

    def time(self, batches: Sequence[Any], plan: TimingPlan) -> TimingResult:
        """Time with CUDA events in the configured mode, rotating among ``batches``."""
        torch = self.torch
        with torch.inference_mode():
            inputs = [self._to_device(b) for b in batches]
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            if self.params["mode"] == "graph":
                pool = GraphPool(self._call, inputs, cuda_capture(torch.cuda.Stream(self.device), {}))
                calls = pool.replays
            else:
                call = self._call
                calls = [lambda x=x: call(x) for x in inputs]
            scratch = (torch.empty(2 * self.l2_bytes // 4, dtype=torch.float32, device=self.device)
                       if self.params["flush_l2"] else None)
            block = make_event_block(torch, calls, scratch)
            result = run_plan(block, plan, timer="torch.cuda.Event(enable_timing=True)",
                              resolution_s=EVENT_RESOLUTION_S)
            result.info["peak_device_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        # No cpu_ms: the work runs on the GPU; the host's CPU time is launches plus synchronize, which may spin.
        result.info["cpu_time_absent"] = ("CUDA: the model runs on the GPU; host CPU time would count kernel "
                                          "launches and synchronize (which may spin), not the model's work")
        return result

    def timed_outputs(self, batches: Sequence[Any]) -> list[Any]:
        """What the timing path computes for each batch (TEST01): the replayed graphs' static outputs
        in graph mode, the eager calls otherwise."""
        torch = self.torch
        with torch.inference_mode():
            inputs = [self._to_device(b) for b in batches]
            if self.params["mode"] == "graph":
                capture = cuda_capture(torch.cuda.Stream(self.device), {})
                return GraphPool(self._call, inputs, capture).replayed_outputs()
            return [self._call(x).float().cpu().numpy() for x in inputs]

    def close(self) -> None:
        """Release the module and cached device memory."""
        self.module = None
        self.torch.cuda.empty_cache()


def make_event_block(torch: Any, calls: Sequence[Callable[[], Any]],
                     scratch: Any = None) -> Callable[[int, int], float]:
    """A ``block(n, offset) -> seconds`` clock for :func:`run_plan` made of CUDA events.

    Without ``scratch`` one event pair brackets the whole block; with it, each call is preceded
    by a write over ``scratch`` (the L2 flush) outside its own event pair, and the pairs are summed.
    """
    k = len(calls)

    def block(n: int, offset: int) -> float:
        if scratch is None or n == 0:  # n == 0: an empty event pair, the timer's own overhead
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for j in range(offset, offset + n):
                calls[j % k]()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        pairs = []
        for j in range(offset, offset + n):
            scratch.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            calls[j % k]()
            end.record()
            pairs.append((start, end))
        pairs[-1][1].synchronize()
        return sum(s.elapsed_time(e) for s, e in pairs) / 1e3

    return block


def open_session(artifact: Artifact, params: Mapping[str, Any]) -> TorchCudaSession:
    """Open a session on the artifact's torch module."""
    return TorchCudaSession(artifact, params)


def available() -> tuple[bool, str]:
    """Whether torch sees a CUDA device. Looks for the NVIDIA driver first, so a machine without
    one answers without importing torch."""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    if not os.path.exists("/dev/nvidiactl") and not os.path.exists("/proc/driver/nvidia/version"):
        return False, "no CUDA device (no NVIDIA driver on this machine)"
    import torch

    if not torch.cuda.is_available():
        return False, f"no CUDA device (torch {torch.__version__} built for CUDA {torch.version.cuda})"
    return True, ""


def fingerprint(params: Mapping[str, Any]) -> dict:
    """The device, driver-side CUDA version and torch build this backend measures with."""
    import torch

    device = int(params["device"])
    props = torch.cuda.get_device_properties(device)
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "device": props.name,
            "capability": f"{props.major}.{props.minor}", "memory_bytes": props.total_memory,
            "cudnn": torch.backends.cudnn.version(), "dtype": params["dtype"], "mode": params["mode"],
            "compile": params["compile"], "tf32": bool(params["tf32"])}


TORCH_CUDA = BackendSpec(
    name="torch-cuda", session=open_session, accepts=("torch",), available=available,
    fingerprint=fingerprint,
    resources=lambda params: {"GPU": 1},
    params=(
        Param("dtype", str, default="fp32", choices=DTYPES, help="compute dtype of weights and inputs"),
        Param("mode", str, default="graph", choices=MODES,
              help="graph: replay captured CUDA graphs (no launch overhead); eager: launch from Python"),
        Param("compile", str, default="none", choices=COMPILE, help="torch.compile mode, or none"),
        Param("tf32", bool, default=False,
              help="let fp32 matmuls and convolutions run in TensorFloat-32 (10 mantissa bits; cuDNN's own default)"),
        Param("flush_l2", bool, default=False, help="write over 2x the L2 cache before each timed call"),
        Param("device", int, default=0, min=0, grid=False, help="CUDA device index"),
    ),
    description="PyTorch on a CUDA device: CUDA-event timing, eager or CUDA-graph replay, fp32/fp16/bf16",
)


@hookimpl
def harness_register_backends(register):
    """Register ``torch-cuda`` and its compression-kernel variant ``torch-cuda-kernels``
    (:mod:`harness_plugins.backends.cuda_kernels`, registered here so the entry points stay as they are)."""
    from harness_plugins.backends.cuda_kernels import TORCH_CUDA_KERNELS

    register(TORCH_CUDA)
    register(TORCH_CUDA_KERNELS)
