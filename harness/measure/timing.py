"""The timing methodology every backend follows, after pyperf.

A backend's session owns its timing loop (inside the runtime that executes the
model); this module gives the shared plan and the loop itself
(:func:`run_plan`), which any runtime can drive with its own clock: a
``block(n, offset)`` callable that runs ``n`` inferences (rotating inputs from
``offset``) and returns the seconds they took by that runtime's timer
(``perf_counter_ns`` in-process, CUDA events on a GPU). :func:`time_calls` and
:class:`InProcessSession` wrap it for runtimes in the harness's own process.

The plan, as pyperf does it:

1. warm up for at least ``warmup_iters`` calls and ``warmup_s`` seconds, then
   until stable: the medians of the last two windows of single calls agree
   within 5% (or ``max_warmup_s`` runs out, recorded as not stable);
2. measure the timer's overhead (an empty block, by the same timer); where one
   call lasts at least ``per_query_factor`` (20) x the timer's resolution plus
   overhead, time every call by itself (per-query samples, as MLPerf LoadGen);
   otherwise calibrate an inner loop so one sample lasts at least
   ``min_sample_s`` and 10x the timer's resolution (block means);
3. take samples until there are ``min_samples`` of them and ``min_time_s`` has
   passed (stopping at ``max_time_s``), keeping at most ``max_samples`` (a
   uniform reservoir).

Inputs rotate among several distinct batches so caches do not flatter a result.
Where the runtime runs in this process, the process's CPU time is read around the
same sampling blocks (``cpu_clock``; Google Benchmark's "CPU" beside "Time"): the
work done, without the time other load kept the runtime off the CPU.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

try:
    from harness.plugin.timingplan import PROFILES, TimingPlan, TimingResult
except ImportError:  # copied beside the runner on a device without the harness (see runner_files)
    from timingplan import PROFILES, TimingPlan, TimingResult  # type: ignore[no-redef]

__all__ = ["PROFILES", "TimingPlan", "TimingResult", "run_plan", "time_calls", "summarize", "InProcessSession",
           "measure_clock", "clock_resolution", "median_ci", "stored_samples", "STORED_SAMPLES"]

#: Relative agreement of two consecutive warm-up windows' medians that counts as stable.
WARMUP_TOLERANCE = 0.05
WARMUP_WINDOW = 10


def measure_clock(clock_ns: Callable[[], int] = time.perf_counter_ns, reads: int = 2001) -> dict:
    """The resolution and overhead of a nanosecond clock, from back-to-back reads.

    ``resolution_s`` is the smallest non-zero step between two consecutive reads (the finest
    difference the clock shows, whatever it declares); ``overhead_s`` is the median step (what one
    read costs). Takes about ``reads`` x the overhead: well under a millisecond for ``perf_counter_ns``.
    """
    stamps = [clock_ns() for _ in range(reads)]
    deltas = [b - a for a, b in zip(stamps, stamps[1:])]
    positive = [d for d in deltas if d > 0]
    resolution_ns = min(positive) if positive else 1
    return {"resolution_s": resolution_ns / 1e9, "overhead_s": statistics.median(deltas) / 1e9,
            "reads": reads}


def run_plan(block: Callable[[int, int], float], plan: TimingPlan, *, timer: str,
             resolution_s: float, clock: Callable[[], float] = time.perf_counter,
             seed: int = 0, cpu_clock: Callable[[], int] | None = None,
             cpu_resolution_s: float | None = None) -> TimingResult:
    """Warm up, then time single calls (per query) or calibrated blocks, following ``plan``.

    ``block`` runs ``n`` inferences rotating inputs from index ``offset`` and returns their
    duration by the runtime's own timer; ``block(0, offset)`` times nothing, which measures that
    timer's overhead. ``clock`` (wall time) only decides when to stop. Where one call lasts at
    least ``plan.per_query_factor`` x (resolution + overhead) every call is timed by itself
    (``info["sampling"] == "per query"``); otherwise each sample is the mean of an inner loop
    calibrated to ``min_sample_s`` (``"block means"``). At most ``plan.max_samples`` samples are
    kept: a uniform reservoir (seeded) over all those taken.

    ``cpu_clock`` (nanoseconds of this process's CPU time: ``time.process_time_ns``, all threads) is
    read just outside the sampling blocks, so the very calls the wall clock times give their CPU time
    per call (``cpu_samples_s``; no extra calls). As for the wall clock, one CPU sample must last
    ``per_query_factor`` x that clock's resolution (``cpu_resolution_s``, else the smallest step seen)
    plus its overhead: where one block is shorter, a CPU sample spans the fewest consecutive blocks
    (a power of two) that are long enough (``info["cpu_calls_per_sample"]``), in a reservoir of its own.
    """
    # 1. Warm-up: minimum count and time, then until two consecutive windows agree.
    began = clock()
    single: list[float] = []
    i = 0
    stable = False
    while True:
        single.append(block(1, i))
        i += 1  # one running position across all phases keeps the input rotation strict
        elapsed = clock() - began
        if i < plan.warmup_iters or elapsed < plan.warmup_s or len(single) < 2 * WARMUP_WINDOW:
            continue
        prev = statistics.median(single[-2 * WARMUP_WINDOW:-WARMUP_WINDOW])
        last = statistics.median(single[-WARMUP_WINDOW:])
        if prev > 0 and abs(last - prev) / prev <= WARMUP_TOLERANCE:
            stable = True
            break
        if elapsed >= plan.max_warmup_s:
            break
        if len(single) > 4 * WARMUP_WINDOW:
            del single[:-2 * WARMUP_WINDOW]  # only the last two windows are ever read
    warmup_iters = i
    warmup_s = clock() - began
    call_s = statistics.median(single[-WARMUP_WINDOW:])
    # 2. The timer's own overhead, by the same timer: an empty block.
    overhead_s = max(0.0, statistics.median(block(0, i) for _ in range(31)))
    threshold = plan.per_query_factor * (resolution_s + overhead_s)
    per_query = plan.sampling == "auto" and call_s >= threshold
    # 3. Calibration (block means only): start from the warm-up's median call (one noisy block cannot
    # stop it short), then double the inner loop until one sample is long enough.
    floor = max(plan.min_sample_s, 10 * resolution_s)
    inner = 1
    while not per_query and call_s > 0 and inner * call_s < floor and inner < 1 << 20:
        inner *= 2
    pos = i
    while not per_query:
        took = block(inner, pos)
        pos += inner
        if took >= floor or inner >= 1 << 20:
            break
        inner *= 2
    cpu = _CPUSamples(cpu_clock, cpu_resolution_s, plan, inner, inner * call_s, seed) if cpu_clock else None
    # 4. Samples, at most max_samples kept (Algorithm R), so memory stays bounded on any plan.
    pick = random.Random(seed)
    cap = plan.max_samples
    samples: list[float] = []
    taken = 0
    begin = clock()
    while True:
        if cpu:
            cpu.before()
        value = block(inner, pos) / inner
        if cpu:
            cpu.after()
        pos += inner
        taken += 1
        if len(samples) < cap:
            samples.append(value)
        else:
            j = pick.randrange(taken)
            if j < cap:
                samples[j] = value
        spent = clock() - begin
        if taken >= plan.min_samples and spent >= plan.min_time_s:
            break
        if spent >= plan.max_time_s and taken >= 3:
            break
    info = {"warmup_stable": stable, "warmup_s": warmup_s, "timer_resolution_s": resolution_s,
            "timer_overhead_s": overhead_s, "per_query_threshold_s": threshold, "call_estimate_s": call_s,
            "sampling": "per query" if per_query else "block means",
            "samples": "per query" if per_query else f"block means of {inner} calls",
            "calls_per_sample": inner, "samples_taken": taken, "samples_kept": len(samples)}
    if not per_query:
        info["min_sample_s"] = floor
    if cpu:
        info.update(cpu.info())
    return TimingResult(samples_s=samples, inner_loops=inner, warmup_iters=warmup_iters, timer=timer, info=info,
                        cpu_samples_s=(cpu.samples or None) if cpu else None)


class _CPUSamples:
    """CPU time per call over groups of consecutive sampling blocks (:func:`run_plan`'s ``cpu_clock``).

    A group is as many blocks (a power of two) as make one CPU sample last ``per_query_factor`` x the CPU
    clock's resolution plus overhead, the wall clock's rule, so the clock's own reads stay within
    1/factor of what it measures; its samples have a reservoir of their own (seeded apart from the wall's).
    """

    def __init__(self, clock: Callable[[], int], resolution_s: float | None, plan: TimingPlan, inner: int,
                 block_s: float, seed: int) -> None:
        read = measure_clock(clock, reads=201)
        self.clock, self.inner, self.cap = clock, inner, plan.max_samples
        self.resolution_s = read["resolution_s"] if resolution_s is None else resolution_s
        self.overhead_s = read["overhead_s"]
        self.need_s = plan.per_query_factor * (self.resolution_s + self.overhead_s)
        self.group = 1
        while block_s > 0 and self.group * block_s < self.need_s and self.group < 1 << 20:
            self.group *= 2
        self.pick = random.Random(seed + 1)
        self.samples: list[float] = []
        self.taken = self.pending = self.start = 0

    def before(self) -> None:
        if not self.pending:
            self.start = self.clock()

    def after(self) -> None:
        self.pending += 1
        if self.pending < self.group:
            return
        value = (self.clock() - self.start) / 1e9 / (self.group * self.inner)
        self.pending = 0
        self.taken += 1
        if len(self.samples) < self.cap:
            self.samples.append(value)
        else:
            j = self.pick.randrange(self.taken)
            if j < self.cap:
                self.samples[j] = value

    def info(self) -> dict:
        name = f"{getattr(self.clock, '__module__', None) or ''}.{getattr(self.clock, '__name__', 'cpu clock')}"
        out = {"cpu_timer": name.lstrip("."), "cpu_timer_resolution_s": self.resolution_s,
               "cpu_timer_overhead_s": self.overhead_s, "cpu_threshold_s": self.need_s,
               "cpu_calls_per_sample": self.group * self.inner, "cpu_samples_taken": self.taken}
        if not self.samples:
            out["cpu_time_absent"] = (f"no CPU sample: one needs {self.group} timed blocks (at least "
                                      f"{self.need_s * 1e6:.3g} us, {self.resolution_s * 1e6:.3g} us resolution); "
                                      "the sampling phase ended first")
        return out


def clock_resolution() -> float:
    """``perf_counter_ns``'s resolution: the declared one or the smallest step seen, whichever is coarser."""
    return max(time.get_clock_info("perf_counter").resolution, measure_clock(reads=201)["resolution_s"])


def time_calls(calls: Sequence[Callable[[], Any]], plan: TimingPlan) -> TimingResult:
    """Time a rotation of zero-argument calls (one per distinct input batch) with ``plan``, by
    ``perf_counter_ns`` (wall) and ``process_time_ns`` (this process's CPU time, ``cpu_samples_s``).

    The calls should be bound in advance (feeds prepared, arguments resolved), so that
    the loop measures the runtime, not the harness.
    """
    if not calls:
        raise ValueError("time_calls needs at least one call")
    clock = time.perf_counter_ns
    n = len(calls)

    def block(count: int, offset: int) -> float:
        t0 = clock()
        for j in range(offset, offset + count):
            calls[j % n]()
        return (clock() - t0) / 1e9

    # The runtime runs in this process: its CPU time (every thread's) is this process's.
    return run_plan(block, plan, timer="time.perf_counter_ns", resolution_s=clock_resolution(),
                    cpu_clock=time.process_time_ns, cpu_resolution_s=time.get_clock_info("process_time").resolution)


class InProcessSession:
    """Base class for sessions whose runtime runs in the harness's Python process.

    Subclasses implement :meth:`bind` (a zero-argument call on one prepared batch) and
    set ``info``; :meth:`run` and :meth:`time` come from it.
    """

    info: dict = {}

    def bind(self, x: Any) -> Callable[[], Any]:
        """Return a call that runs inference on ``x`` and returns the outputs as numpy."""
        raise NotImplementedError("InProcessSession subclasses implement bind(x)")

    def run(self, x: Any) -> Any:
        """Outputs for one batch."""
        return self.bind(x)()

    def time(self, batches: Sequence[Any], plan: TimingPlan) -> TimingResult:
        """Time inference with :func:`time_calls`, rotating among ``batches``."""
        return time_calls([self.bind(b) for b in batches], plan)

    def timed_outputs(self, batches: Sequence[Any]) -> list[Any]:
        """The outputs of the very calls :meth:`time` times, one per batch (MLPerf's TEST01)."""
        return [self.bind(b)() for b in batches]

    def close(self) -> None:
        """Nothing to release by default."""


#: At most this many raw samples of a measurement are stored (an evenly spaced subsample in time order,
#: first and last included); the statistics are computed on all of them first. See docs/measurements.md.
STORED_SAMPLES = 10_000


def stored_samples(samples: Sequence[float], cap: int = STORED_SAMPLES) -> list[float]:
    """At most ``cap`` of ``samples`` to store: all of them when they fit, else ``cap`` evenly spaced ones
    (index ``round(i * (n - 1) / (cap - 1))``), which keeps their time order and spread."""
    n = len(samples)
    if n <= cap:
        return [float(v) for v in samples]
    import numpy as np

    idx = np.rint(np.linspace(0, n - 1, cap)).astype(np.int64)
    arr = np.asarray(samples, dtype=float)
    return arr[idx].tolist()


def median_ci(values: Any, confidence: float = 0.95, p: float = 0.5) -> tuple[float, float] | None:
    """The distribution-free confidence interval of the median (or of the ``p`` quantile) from order
    statistics: the exact binomial interval of ``scipy.stats.quantile_test`` (ranks from Binomial(n, p));
    one sort, O(n log n) time and O(n) memory. ``None`` when ``n`` is too small for this confidence
    (under 6 values for the median at 95%)."""
    import numpy as np
    from scipy.stats import quantile_test

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return None
    ci = quantile_test(x, q=float(np.quantile(x, p)), p=p).confidence_interval(confidence)
    low, high = float(ci.low), float(ci.high)
    return None if low != low or high != high else (low, high)


def summarize(samples_s: Sequence[float], *, seed: int = 0) -> dict:
    """Statistics of timing samples, in milliseconds, in memory linear in the sample count.

    median, p10, p90, p99 (linear interpolation), mean, stdev (n - 1) and MAD follow pyperf's definitions,
    computed with numpy on every sample; the 95% confidence interval of the median is the exact
    distribution-free one from order statistics (:func:`median_ci`, no bootstrap: a 2000 x n
    resampling array does not fit in memory for a million samples). ``unstable`` follows pyperf's
    rule: coefficient of variation above 10%. ``seed`` is accepted for compatibility; nothing is random.
    """
    import numpy as np

    x = np.asarray(samples_s, dtype=float)
    n = int(x.size)
    if n == 0:
        raise ValueError("summarize needs at least one sample")
    ms = 1e3
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if n > 1 else 0.0
    p10, median, p90, p99 = (float(v) for v in np.percentile(x, [10, 50, 90, 99]))
    stats = {
        "n": n,
        "median_ms": median * ms,
        "p10_ms": p10 * ms,
        "p90_ms": p90 * ms,
        "p99_ms": p99 * ms,
        "mean_ms": mean * ms,
        "stdev_ms": stdev * ms,
        "mad_ms": (float(np.median(np.abs(x - median))) if n > 1 else 0.0) * ms,
        "min_ms": float(x.min()) * ms,
        "max_ms": float(x.max()) * ms,
        "cv": (stdev / mean) if mean > 0 else 0.0,
    }
    if n >= 6:
        ci = median_ci(x)
        if ci is not None:
            stats["ci95_median_ms"] = [ci[0] * ms, ci[1] * ms]
            stats["ci95_method"] = "order statistics (binomial, distribution-free)"
        low10 = median_ci(x, p=0.1)
        if low10 is not None:
            stats["ci95_p10_ms"] = [low10[0] * ms, low10[1] * ms]
    stats["unstable"] = stats["cv"] > 0.10
    return stats
