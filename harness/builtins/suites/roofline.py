"""The latency suite's physical-limit check: each latency against what this machine can compute.

The implied rate of a cell (its non-zero FLOPs per second, and bytes of weights per second where
they exceed the cache) is compared with this machine's attainable peak at the cell's thread count
(:func:`harness.api.cpu_peak`, or :func:`harness.api.cuda_peak` in the cell's dtype for a CUDA
session), measured once per machine and cached; :func:`harness.api.roofline_check` gives the
verdict. Uses only :mod:`harness.api`, like any plugin.
"""

from __future__ import annotations

from harness.api import CellContext, cpu_peak, cuda_peak, last_level_cache_bytes, roofline_check


def not_applicable(info: dict) -> str | None:
    """Why this machine's peak says nothing about the cell, or ``None`` when it does."""
    if info.get("emulated"):
        return "timed under emulation: not a hardware figure"
    if info.get("transport") == "ssh":
        return "timed on another device (ssh): its peak is not measured here"
    return None


def verdict(ctx: CellContext, batch_size: int, latency_s: float, info: dict) -> dict:
    """The roofline verdict of one batch size's median latency (``skipped`` says why when none applies)."""
    why = not_applicable(info)
    if why:
        return {"skipped": why, "flag": None, "roofline_fraction": None}
    manifest = ctx.artifact.manifest
    flops = (manifest.get("analysis") or {}).get("nonzero_flops")
    bits = (manifest.get("claims") or {}).get("weight_bits")
    params = ctx.cell.get("backend_params") or {}
    if info.get("cuda") and info.get("dtype"):
        def peak_of(refresh: bool) -> dict:
            return cuda_peak(int(params.get("device", 0)), info["dtype"], bool(info.get("tf32")), refresh=refresh)
        weight_bytes = cache_bytes = None  # the GPU's bandwidth check needs its L2 size: compute only
        int8 = False
    else:
        def peak_of(refresh: bool) -> dict:
            return cpu_peak(int(info.get("threads") or 1), refresh=refresh)
        weight_bytes = ctx.artifact.file("onnx").stat().st_size if "onnx" in ctx.artifact.formats else None
        cache_bytes = last_level_cache_bytes()
        int8 = isinstance(bits, (int, float)) and not isinstance(bits, bool) and bits <= 8

    def judge(peak: dict) -> dict:
        return roofline_check(flops_per_sample=flops, batch_size=batch_size, latency_s=latency_s, peak=peak,
                              weight_bytes=weight_bytes, cache_bytes=cache_bytes, int8=int8)

    peak = peak_of(False)
    out = judge(peak)
    if out["flag"] and peak.get("cache") == "hit":
        # A flag is confirmed against a fresh measurement (the best of it and the cached figure), so
        # a peak cached while the machine was busy never condemns an honest result.
        peak = peak_of(True)
        out = judge(peak)
    out["peak"] = {k: peak.get(k) for k in ("matmul_gflops", "bandwidth_gbs", "threads", "library", "cache")}
    if not flops:
        out["skipped"] = "the artifact's non-zero FLOPs are not counted (no torch module to count them on)"
    return out
