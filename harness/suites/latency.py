"""The latency suite: single-stream and offline timing inside the backend's runtime.

Batches come from the test split and rotate, so caches do not flatter a result.
Raw samples are kept; percentiles and a bootstrap confidence interval of the
median are computed from them (:func:`harness.timing.summarize`).
"""

from __future__ import annotations

from harness.api import CellContext, Measurement, MetricSpec, Param, SuiteSpec, TimingPlan, hookimpl
from harness.timing import PROFILES, summarize

METRICS = (
    MetricSpec("p50_ms", "ms", False, "median latency of one batch"),
    MetricSpec("p90_ms", "ms", False, "90th percentile latency of one batch (MLPerf single-stream headline)"),
    MetricSpec("p99_ms", "ms", False, "99th percentile latency of one batch"),
    MetricSpec("mean_ms", "ms", False, "mean latency of one batch"),
    MetricSpec("stdev_ms", "ms", False, "standard deviation of the latency samples"),
    MetricSpec("throughput_sps", "samples/s", True, "samples per second: batch size over mean latency"),
)


def input_batches(x, batch_size: int, count: int) -> list:
    """``count`` distinct batches of ``batch_size`` samples from ``x`` (cycled when ``x`` is short)."""
    import numpy as np

    n = len(x)
    batches = []
    for i in range(count):
        idx = (np.arange(batch_size) + i * batch_size) % n
        batches.append(np.ascontiguousarray(x[idx], dtype=np.float32))
    return batches


def run(ctx: CellContext) -> list[Measurement]:
    """Time every batch size of the settings on the cell's backend."""
    s = ctx.settings
    plan = TimingPlan.profile(s["profile"], min_time_s=s["min_time_s"] or None,
                              min_samples=s["min_samples"] or None)
    sizes = sorted(s["batch_sizes"])
    x = ctx.splits.test.x if len(ctx.splits.test) else ctx.splits.train.x
    session = ctx.open_session()
    out: list[Measurement] = []
    try:
        for bs in sizes:
            batches = input_batches(x, bs, s["rotate"])
            result = session.time(batches, plan)
            stats = summarize(result.samples_s, seed=ctx.cell["seed"])
            scenario = "single-stream" if bs == 1 else ("offline" if bs == sizes[-1] else "batch")
            info = dict(session.info)
            info.update({"batch_size": bs, "scenario": scenario, "timer": result.timer,
                         "inner_loops": result.inner_loops, "warmup_iters": result.warmup_iters,
                         "distinct_inputs": len(batches), "plan": plan.as_dict(), "profile": s["profile"],
                         **result.info})
            params = {"batch_size": bs}
            samples_ms = [v * 1e3 for v in result.samples_s]
            mean_s = stats["mean_ms"] / 1e3
            values = [("p50_ms", stats["median_ms"]), ("p90_ms", stats["p90_ms"]),
                      ("p99_ms", stats["p99_ms"]), ("mean_ms", stats["mean_ms"]),
                      ("stdev_ms", stats["stdev_ms"])]
            for metric, value in values:
                m = Measurement(metric, value, "ms", params=params, stats=stats, info=info)
                if metric == "p50_ms":
                    m.samples = samples_ms
                out.append(m)
            out.append(Measurement("throughput_sps", bs / mean_s if mean_s > 0 else None, "samples/s",
                                   params=params, stats=stats, info=info))
    finally:
        session.close()
    return out


@hookimpl
def harness_register_suites(register):
    """Register the standard latency suite."""
    register(SuiteSpec(
        name="latency", run=run, metrics=METRICS,
        settings=(
            Param("batch_sizes", list, default=[1], item_type=int, min=1,
                  help="batch sizes; 1 is the single-stream scenario, the largest the offline one"),
            Param("profile", str, default="default", choices=tuple(PROFILES), grid=False,
                  help="timing plan: warm-up, minimum samples and time"),
            Param("rotate", int, default=4, min=1, grid=False,
                  help="distinct input batches to rotate among"),
            Param("min_time_s", float, default=0.0, min=0.0, grid=False,
                  help="override the profile's minimum timed duration (0: keep)"),
            Param("min_samples", int, default=0, min=0, grid=False,
                  help="override the profile's minimum sample count (0: keep)"),
        ),
        description="latency and throughput timed inside the backend's runtime",
    ))
