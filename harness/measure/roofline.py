"""The physical-limit check: is a latency faster than the machine can compute?

A latency cell's implied rate is the work of one batch over its median latency:

- compute: ``nonzero_flops`` of one sample (ShrinkBench's count, :mod:`harness.measure.analysis`)
  x the batch size / ``p50`` seconds, in GFLOP/s;
- memory: where the model's weights do not fit in the last-level cache, every call must read them
  from memory at least once: the ONNX file's bytes / ``p50`` seconds, in GB/s.

``roofline_fraction`` is the implied FLOP/s over the attainable peak FLOP/s at the cell's thread
count (:mod:`harness.measure.peak`). A cell whose implied rate exceeds the peak (compute or
bandwidth) by more than :data:`MARGIN` is flagged: ``faster than this machine can compute``.

Why a margin of 3: the peak is a library's fp32 matmul, its shortest repetition, which hand-tuned
kernels beat by up to about 1.3x; the FLOPs are counted for direct convolution, and the fastest
algorithms CPU runtimes ship (Winograd F(2x2, 3x3)) do 2.25x fewer multiplications for 3x3
convolutions. 1.3 x 2.25 is about 3: an honest result stays under it, while a backend that skips
the work (returns a cached output) is tens to thousands of times faster than the bar.
Cells of methods that claim 8 or fewer weight bits are held to 4x the fp32 peak: 8-bit dot-product
instructions (x86 VNNI, Arm SDOT) do four multiply-adds per 32-bit lane.
"""

from __future__ import annotations

#: How far above the attainable peak an implied rate may go before the cell is flagged (see above).
MARGIN = 3.0
#: The integer peak, relative to fp32, for cells that claim 8 or fewer weight bits.
INT8_FACTOR = 4.0


def check(*, flops_per_sample: float | None, batch_size: int, latency_s: float, peak: dict,
          weight_bytes: float | None = None, cache_bytes: float | None = None, int8: bool = False,
          margin: float = MARGIN) -> dict:
    """The roofline verdict of one latency figure.

    :param flops_per_sample: the artifact's non-zero FLOPs per sample (``None``: not counted).
    :param latency_s: the cell's median latency of one batch.
    :param peak: ``matmul_gflops``, ``bandwidth_gbs`` and ``threads`` (:func:`harness.measure.peak.cpu_peak`).
    :param weight_bytes: bytes every call must read (the ONNX file), checked against bandwidth only when
        larger than ``cache_bytes``.
    :param int8: hold the cell to :data:`INT8_FACTOR` x the fp32 peak.
    :returns: ``implied_gflops``, ``peak_gflops``, ``roofline_fraction`` (``None`` without FLOPs),
        ``implied_gbs`` where the bandwidth applies, and ``flag`` (a message, or ``None``).
    """
    out: dict = {"margin": margin, "peak_threads": peak.get("threads"), "flag": None}
    if latency_s is None or latency_s <= 0:
        out["roofline_fraction"] = None
        out["flag"] = (f"faster than this machine can compute: a latency of {latency_s} s implies unbounded "
                       "work per second")
        return out
    peak_gflops = float(peak["matmul_gflops"]) * (INT8_FACTOR if int8 else 1.0)
    out["peak_gflops"] = peak_gflops
    out["peak_basis"] = "4x fp32 matmul (8-bit weights)" if int8 else "fp32 matmul"
    reasons = []
    if flops_per_sample:
        implied = flops_per_sample * batch_size / latency_s / 1e9
        out["implied_gflops"] = implied
        out["roofline_fraction"] = implied / peak_gflops
        if implied > margin * peak_gflops:
            reasons.append(f"{implied:,.1f} GFLOP/s implied, peak {peak_gflops:,.1f} GFLOP/s at "
                           f"{peak.get('threads')} thread(s)")
    else:
        out["roofline_fraction"] = None
    if weight_bytes and cache_bytes is not None and weight_bytes > cache_bytes:
        implied_bw = weight_bytes / latency_s / 1e9
        out["implied_gbs"] = implied_bw
        out["peak_gbs"] = float(peak["bandwidth_gbs"])
        if implied_bw > margin * out["peak_gbs"]:
            reasons.append(f"{implied_bw:,.1f} GB/s of weights implied, memory bandwidth {out['peak_gbs']:,.1f} GB/s")
    if reasons:
        out["flag"] = ("faster than this machine can compute: " + ", and ".join(reasons)
                       + f" (more than {margin:g}x the attainable peak)")
    return out
