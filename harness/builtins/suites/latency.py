"""The latency suite: single-stream and offline timing inside the backend's runtime.

Batches come from the test split and rotate, so caches do not flatter a result.
Percentiles and an order-statistics confidence interval of the median are computed
from every raw sample (:func:`harness.api.summarize`); at most ``STORED_SAMPLES`` of them
are stored (:func:`harness.api.stored_samples`). Against the
``dense`` model on the same backend and batch size it reports the realized
speedup beside the theoretical one (ShrinkBench's FLOP ratio): whether a
method's savings are real.

Every cell also checks, per batch size, that the timed call computes: its outputs on the rotated
inputs equal the reference backend's (MLPerf TEST01, :func:`harness.api.check_timed_call`;
``check_test01``). A backend whose timed call returns an output computed earlier, a cached or a
constant one is flagged and never ranked, whatever else the suite file names.
"""

from __future__ import annotations

from harness.api import (
    CHECK_METRICS,
    PROFILES,
    CellContext,
    Measurement,
    MetricSpec,
    Param,
    SuiteSpec,
    TimingPlan,
    TimingResult,
    batch_len,
    check_measurement,
    check_timed_call,
    hookimpl,
    output_precision,
    prepare,
    reference_outputs,
    stored_samples,
    summarize,
    take,
)
from harness.api import theoretical_speedup as from_analysis
from harness.builtins.suites import roofline

METRICS = (
    MetricSpec("p50_ms", "ms", False, "median latency of one batch"),
    MetricSpec("p10_ms", "ms", False, "10th percentile latency of one batch: the speed of the calls no other load "
               "delayed, steady on a busy machine (what compare tests first)"),
    MetricSpec("p90_ms", "ms", False, "90th percentile latency of one batch (MLPerf single-stream headline)"),
    MetricSpec("p99_ms", "ms", False, "99th percentile latency of one batch"),
    MetricSpec("mean_ms", "ms", False, "mean latency of one batch"),
    MetricSpec("stdev_ms", "ms", False, "standard deviation of the latency samples"),
    MetricSpec("cpu_ms", "ms", False, "median process CPU time of one batch (all threads of the timing process) "
               "over the same timed calls: the work done, without time other load kept it off the CPU; "
               "in-process CPU backends only"),
    MetricSpec("throughput_sps", "samples/s", True, "samples per second: batch size over mean latency"),
    MetricSpec("speedup", "ratio", True, "dense p50 over this p50, same backend and batch size (realized speedup)"),
    MetricSpec("speedup_efficiency", "ratio", True,
               "realized speedup over theoretical speedup (dense flops / nonzero_flops): 1 means the savings are real"),
    MetricSpec("peak_device_mb", "MiB", False, "peak device memory allocated while timing (GPU backends)"),
    MetricSpec("roofline_fraction", "ratio", True,
               "implied non-zero FLOP/s (batch x nonzero_flops / p50) over this machine's attainable fp32 "
               "matmul peak at the cell's threads"),
    CHECK_METRICS["test01"],
)


def input_batches(x, batch_size: int, count: int) -> list:
    """``count`` distinct batches of ``batch_size`` samples from ``x`` (cycled when ``x`` is short).

    ``x`` is an array or a feed of named arrays (:func:`harness.api.is_feed`); batches keep its form.
    """
    import numpy as np

    n = batch_len(x)
    batches = []
    for i in range(count):
        idx = (np.arange(batch_size) + i * batch_size) % n
        batches.append(prepare(take(x, idx)))
    return batches


def merge(results: list[TimingResult]) -> TimingResult:
    """One result from several timing processes: samples concatenated, per-process facts kept."""
    if len(results) == 1:
        return results[0]
    samples = [v for r in results for v in r.samples_s]
    info = dict(results[0].info)
    info["per_process"] = [{"n": len(r.samples_s), "inner_loops": r.inner_loops, "warmup_iters": r.warmup_iters,
                          **{k: v for k, v in r.info.items() if not isinstance(v, (list, dict))}}
                         for r in results]
    info["warmup_stable"] = all(r.info.get("warmup_stable", True) for r in results)
    peaks = [r.info["peak_device_bytes"] for r in results if "peak_device_bytes" in r.info]
    if peaks:
        info["peak_device_bytes"] = max(peaks)
    info["process_samples"] = [r.samples_s for r in results]  # popped by run(): per-process statistics
    # CPU time only where every process measured it: a merge of some processes' would not be the cell's.
    cpu = None
    lacking = [i for i, r in enumerate(results) if cpu_samples(r) is None]
    if lacking:
        info["cpu_time_absent"] = (f"process {lacking[0] + 1} of {len(results)}: "
                                   f"{cpu_time_absent(results[lacking[0]])}")
        info.pop("process_cpu_samples", None)
    else:
        cpu = [v for r in results for v in r.cpu_samples_s]
        info["process_cpu_samples"] = [r.cpu_samples_s for r in results]
        info.pop("cpu_time_absent", None)
    # The largest inner loop speaks for all: one process of block means makes the tails block percentiles.
    return TimingResult(samples_s=samples, inner_loops=max(r.inner_loops for r in results),
                        warmup_iters=sum(r.warmup_iters for r in results), timer=results[0].timer, info=info,
                        cpu_samples_s=cpu)


def cpu_samples(result: TimingResult) -> list | None:
    """The result's CPU seconds per call (``cpu_samples_s``), or ``None`` where it has none."""
    return getattr(result, "cpu_samples_s", None) or None


def cpu_time_absent(result: TimingResult) -> str:
    """Why a result has no ``cpu_ms``: the runtime's own reason, else what it returned."""
    return str(result.info.get("cpu_time_absent") or f"the backend's session ({result.timer}) measured no "
                                                      "process CPU time (TimingResult.cpu_samples_s)")


def theoretical_speedup(ctx: CellContext) -> float | None:
    """The artifact's theoretical speedup, from its build-time analysis (as the size suite reports it)."""
    return from_analysis(ctx.artifact.manifest.get("analysis") or {})


def test01(ctx: CellContext, session, batches: list, bs: int) -> Measurement:
    """``check_test01`` at one batch size: the timed call's outputs on the rotated ``batches`` against the
    reference's (computed once per artifact and inputs). ``session`` ``None``: one is opened for it."""
    prec = output_precision(ctx.cell.get("backend_params"), ctx.artifact.manifest.get("claims"))
    reference, ref_info = reference_outputs(ctx.artifact, batches)
    own = session is None
    session = ctx.open_session() if own else session
    try:
        check = check_timed_call(session, batches, reference, prec)
    finally:
        if own:
            session.close()
    check.info["reference"] = ref_info.get("runtime")
    return check_measurement(check, {"batch_size": bs})


def run(ctx: CellContext) -> list[Measurement]:
    """Time every batch size of the settings on the cell's backend, and check its timed call (TEST01)."""
    s = ctx.settings
    processes = s["processes"]
    plan = TimingPlan.profile(s["profile"], min_time_s=s["min_time_s"] or None,
                              min_samples=s["min_samples"] or None, sampling=s["sampling"])
    if processes > 1:
        # The budget is shared: N processes each take 1/N of the samples and time.
        plan = TimingPlan(**{**plan.as_dict(), "min_samples": max(3, -(-plan.min_samples // processes)),
                             "min_time_s": plan.min_time_s / processes, "max_time_s": plan.max_time_s / processes})
    sizes = sorted(s["batch_sizes"])
    x = ctx.splits.test.x if len(ctx.splits.test) else ctx.splits.train.x
    theory = theoretical_speedup(ctx)
    session = ctx.open_session() if processes == 1 else None
    session_info = dict(session.info) if session else {}
    out: list[Measurement] = []
    try:
        for bs in sizes:
            batches = input_batches(x, bs, s["rotate"])
            if session is not None:
                result = session.time(batches, plan)
            else:
                result = merge(ctx.time_in_processes(batches, plan, processes))
                session_info = result.info.pop("session_info", {})
            stats = summarize(result.samples_s, seed=ctx.cell["seed"])
            cpu = cpu_samples(result)
            if cpu:  # summarized as the wall samples are: the median and its order-statistics interval
                stats["cpu"] = {k: v for k, v in summarize(cpu).items() if k != "ci95_method"}
            if processes > 1:
                # Each process's own statistics: the process is compare's unit of variation (pyperf's workers).
                per = [summarize(r, seed=ctx.cell["seed"]) for r in result.info.pop("process_samples", [])]
                if per:
                    stats["per_process"] = {k: [p[k] for p in per] for k in ("median_ms", "mean_ms", "p10_ms",
                                                                             "p90_ms", "p99_ms")}
                per_cpu = result.info.pop("process_cpu_samples", None)
                if per and cpu and per_cpu:
                    stats["per_process"]["cpu_median_ms"] = [summarize(c)["median_ms"] for c in per_cpu]
            if not cpu:
                result.info["cpu_time_absent"] = cpu_time_absent(result)
            scenario = "single-stream" if bs == 1 else ("offline" if bs == sizes[-1] else "batch")
            info = dict(session_info)
            info.update({"batch_size": bs, "scenario": scenario, "timer": result.timer,
                         "inner_loops": result.inner_loops, "warmup_iters": result.warmup_iters,
                         "distinct_inputs": len(batches), "plan": plan.as_dict(), "profile": s["profile"],
                         "processes": processes, **result.info})
            flag = None
            if info.get("emulated"):
                flag = ("latency only: timed under emulation (qemu-user), not a hardware figure "
                        "(outputs and accuracy are real)")
            tail_flag = None
            # What the samples are, from the inner loop count (a backend's own loop may not say).
            info["samples"] = "per query" if result.inner_loops == 1 else f"block means of {result.inner_loops} calls"
            if result.inner_loops > 1:  # block means: p90/p99 are percentiles of means, not of queries
                info["tails"] = "block percentiles"
                tail_flag = (f"latency only: block percentiles: samples are block means of {result.inner_loops} calls "
                             "(one call is too short for the clock), so p90/p99 are not per-query tails")
            else:
                info["tails"] = "per query"
            roof = roofline.verdict(ctx, bs, stats["median_ms"] / 1e3, info)
            info["roofline"] = roof
            if roof["flag"] and not flag:
                flag = f"latency only: {roof['flag']}"
            if stats["unstable"]:
                info["warning"] = (f"unstable: coefficient of variation {stats['cv']:.1%} > 10% "
                                   "(pyperf's rule); the machine may be busy or throttled")
            params = {"batch_size": bs}
            mean_s = stats["mean_ms"] / 1e3
            values = [("p50_ms", stats["median_ms"]), ("p10_ms", stats["p10_ms"]), ("p90_ms", stats["p90_ms"]),
                      ("p99_ms", stats["p99_ms"]), ("mean_ms", stats["mean_ms"]),
                      ("stdev_ms", stats["stdev_ms"])]
            for metric, value in values:
                m = Measurement(metric, value, "ms", params=params, stats=stats, info=info,
                                flag=flag or (tail_flag if metric in ("p90_ms", "p99_ms") else None))
                if metric == "p50_ms":
                    m.samples = [v * 1e3 for v in stored_samples(result.samples_s)]
                out.append(m)
            if cpu:
                out.append(Measurement("cpu_ms", stats["cpu"]["median_ms"], "ms", params=params, stats=stats,
                                       info=info, flag=flag))
            out.append(Measurement("throughput_sps", bs / mean_s if mean_s > 0 else None, "samples/s",
                                   params=params, stats=stats, info=info, flag=flag))
            dense_p50 = stats["median_ms"] if ctx.is_baseline else ctx.baseline("p50_ms", batch_size=bs)
            if dense_p50 is not None and stats["median_ms"] > 0:
                speedup = dense_p50 / stats["median_ms"]
                sinfo = {"dense_p50_ms": dense_p50, "theoretical_speedup": theory}
                out.append(Measurement("speedup", speedup, "ratio", params=params, info=sinfo, flag=flag))
                if theory:
                    out.append(Measurement("speedup_efficiency", speedup / theory, "ratio", params=params,
                                           info=sinfo, flag=flag))
            if roof.get("roofline_fraction") is not None:
                out.append(Measurement("roofline_fraction", roof["roofline_fraction"], "ratio", params=params,
                                       info={"roofline": roof, "threads": info.get("threads")}, flag=flag))
            if "peak_device_bytes" in result.info:
                out.append(Measurement("peak_device_mb", result.info["peak_device_bytes"] / 2**20, "MiB",
                                       params=params, info=info))
            out.append(test01(ctx, session, batches, bs))
    finally:
        if session is not None:
            session.close()
    return out


@hookimpl
def harness_register_suites(register):
    """Register the standard latency suite."""
    register(SuiteSpec(
        name="latency", run=run, metrics=METRICS, needs_baseline=True, exclusive=True,
        settings=(
            Param("batch_sizes", list, default=[1], item_type=int, min=1, max=65536,
                  help="batch sizes; 1 is the single-stream scenario, the largest the offline one"),
            Param("profile", str, default="default", choices=tuple(PROFILES), grid=False,
                  help="timing plan: warm-up, minimum samples and time (smoke, default, nightly, submission)"),
            Param("rotate", int, default=4, min=1, max=1024, grid=False,
                  help="distinct input batches to rotate among"),
            Param("min_time_s", float, default=0.0, min=0.0, max=3600.0, grid=False,
                  help="override the profile's minimum timed duration (0: keep)"),
            Param("min_samples", int, default=0, min=0, max=1_000_000, grid=False,
                  help="override the profile's minimum sample count (0: keep)"),
            Param("sampling", str, default="auto", choices=("auto", "block"), grid=False,
                  help="auto: every call timed by itself where it lasts 20x the clock's resolution+overhead, "
                       "else block means; block: always block means (the method before per-query timing)"),
            Param("processes", int, default=1, min=1, max=100, grid=False,
                  help="time in this many fresh processes, one after another, and merge their samples "
                       "(pyperf's worker processes)"),
        ),
        description="latency and throughput timed inside the backend's runtime, with realized speedup",
    ))
