"""The timing methodology: warm-up until stable, calibration, sampling, statistics, profiles."""

import math
import statistics

import numpy as np
import pytest

from harness.api import TimingPlan
from harness.measure.timing import (
    PROFILES,
    STORED_SAMPLES,
    measure_clock,
    median_ci,
    run_plan,
    stored_samples,
    summarize,
    time_calls,
)


class FakeRuntime:
    """A deterministic runtime: each call costs ``cost(i)`` seconds on a clock it advances itself."""

    def __init__(self, cost):
        self.cost = cost
        self.now = 0.0
        self.calls = 0

    def clock(self):
        return self.now

    def block(self, n, offset):
        total = 0.0
        for _ in range(n):
            total += self.cost(self.calls)
            self.calls += 1
        self.now += total
        return total


def test_warmup_waits_until_stable_then_calibrates_and_samples():
    # A cold start that converges (caches filling, clocks ramping): 60 us falling towards 10 us.
    rt = FakeRuntime(lambda i: 10e-6 * (1 + 5 * math.exp(-i / 30)))
    plan = TimingPlan(warmup_iters=5, warmup_s=0.0, min_samples=20, min_time_s=0.01, max_time_s=1.0,
                      min_sample_s=1e-4)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-9, clock=rt.clock)
    assert result.info["warmup_stable"] is True
    # Windows of 10 calls agree within 5% only once the transient has mostly decayed.
    assert result.warmup_iters > 60
    assert 10e-6 * (1 + 5 * math.exp(-result.warmup_iters / 30)) < 12e-6
    # 10 us is far above 20 x a 1 ns timer: every call is timed by itself.
    assert result.inner_loops == 1 and result.info["sampling"] == "per query"
    assert len(result.samples_s) >= 20
    assert all(v == pytest.approx(10e-6, rel=0.2) for v in result.samples_s)
    assert sum(result.samples_s) >= 0.01 - 1e-12


def test_block_sampling_calibrates_the_inner_loop():
    rt = FakeRuntime(lambda i: 10e-6)
    plan = TimingPlan(warmup_iters=5, warmup_s=0.0, min_samples=20, min_time_s=0.01, max_time_s=1.0,
                      min_sample_s=1e-4, sampling="block")
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-9, clock=rt.clock)
    assert result.inner_loops == 16  # smallest power of two with 16 x 10 us >= 100 us
    assert result.info["samples"] == "block means of 16 calls"
    assert sum(result.samples_s) * result.inner_loops >= 0.01 - 1e-12


def test_warmup_gives_up_and_says_so_when_never_stable():
    # A machine that keeps slowing down (1% per call): no two windows agree, so warm-up stops
    # at max_warmup_s and the result says it was not stable.
    rt = FakeRuntime(lambda i: 10e-6 * 1.01 ** i)
    plan = TimingPlan(warmup_iters=1, warmup_s=0.001, min_samples=3, min_time_s=0.0, max_time_s=1.0)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-9, clock=rt.clock)
    assert result.info["warmup_stable"] is False
    assert result.info["warmup_s"] >= plan.max_warmup_s


def test_sample_floor_respects_the_timer_resolution():
    rt = FakeRuntime(lambda i: 1e-6)
    plan = TimingPlan(warmup_iters=1, warmup_s=0.0, min_samples=3, min_time_s=0.0, min_sample_s=1e-6)
    result = run_plan(rt.block, plan, timer="coarse", resolution_s=1e-3, clock=rt.clock)
    assert result.info["min_sample_s"] == pytest.approx(1e-2)  # 10x a 1 ms timer
    assert result.inner_loops * 1e-6 >= 1e-2


def test_time_calls_rotates_every_input():
    seen = []
    calls = [lambda i=i: seen.append(i) for i in range(4)]
    plan = TimingPlan(warmup_iters=8, warmup_s=0.0, min_samples=3, min_time_s=0.0, min_sample_s=0.0)
    result = time_calls(calls, plan)
    assert set(seen) == {0, 1, 2, 3}
    # Consecutive calls never repeat an input: the rotation is strict.
    assert all(a != b for a, b in zip(seen, seen[1:]))
    assert result.timer == "time.perf_counter_ns" and len(result.samples_s) >= 3


def test_summarize_matches_numpy_and_brackets_the_median():
    rng = np.random.default_rng(0)
    samples = list(0.001 + rng.exponential(0.0001, size=500))
    stats = summarize(samples)
    ms = np.asarray(samples) * 1e3
    assert stats["median_ms"] == pytest.approx(np.median(ms))
    assert stats["p90_ms"] == pytest.approx(np.percentile(ms, 90))
    assert stats["p10_ms"] == pytest.approx(np.percentile(ms, 10))
    assert stats["p99_ms"] == pytest.approx(np.percentile(ms, 99))
    assert stats["mean_ms"] == pytest.approx(ms.mean())
    assert stats["stdev_ms"] == pytest.approx(ms.std(ddof=1))
    assert stats["mad_ms"] == pytest.approx(np.median(np.abs(ms - np.median(ms))))
    low, high = stats["ci95_median_ms"]
    assert low <= stats["median_ms"] <= high
    assert stats["unstable"] is False
    assert summarize(samples) == stats  # nothing random


def test_high_variation_is_flagged_unstable():
    stats = summarize([0.001, 0.002] * 10)
    assert stats["cv"] > 0.10 and stats["unstable"] is True


def test_profiles():
    assert set(PROFILES) == {"smoke", "default", "nightly", "submission"}
    assert TimingPlan.profile("submission").min_time_s == 600.0
    assert TimingPlan.profile("nightly", min_time_s=None).min_time_s == PROFILES["nightly"]["min_time_s"]
    assert TimingPlan.profile("smoke", min_samples=7).min_samples == 7
    assert statistics.mean([PROFILES["smoke"]["min_time_s"]]) < PROFILES["nightly"]["min_time_s"]


class OverheadRuntime(FakeRuntime):
    """A fake runtime whose timer costs ``overhead`` seconds per block, empty or not."""

    def __init__(self, cost, overhead):
        super().__init__(cost)
        self.overhead = overhead

    def block(self, n, offset):
        return super().block(n, offset) + self.overhead


def test_per_query_samples_keep_the_tail_that_block_means_hide():
    # Every tenth call is 5x slower (a GC pause, a page fault): p90/p99 of single queries show it.
    rt = FakeRuntime(lambda i: 50e-6 if i % 10 == 9 else 10e-6)
    plan = TimingPlan(warmup_iters=1, warmup_s=0.0, min_samples=1000, min_time_s=0.0, max_time_s=10.0)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-7, clock=rt.clock)
    assert result.info["sampling"] == "per query" and result.info["samples"] == "per query"
    assert result.info["per_query_threshold_s"] == pytest.approx(20 * 1e-7)
    stats = summarize(result.samples_s)
    assert stats["median_ms"] == pytest.approx(0.010) and stats["p99_ms"] == pytest.approx(0.050)
    again = FakeRuntime(rt.cost)
    blocks = run_plan(again.block, TimingPlan(**{**plan.as_dict(), "sampling": "block"}),
                      timer="fake", resolution_s=1e-7, clock=again.clock)
    # Block means of 10+ calls average the slow call away: their p99 is far below 50 us.
    assert summarize(blocks.samples_s)["p99_ms"] < 0.020


def test_calls_too_short_for_the_clock_are_block_means():
    # 1 us calls on a clock of 0.1 us resolution: under 20 x (resolution + overhead) = 2 us.
    rt = FakeRuntime(lambda i: 1e-6)
    plan = TimingPlan(warmup_iters=1, warmup_s=0.0, min_samples=5, min_time_s=0.0, min_sample_s=1e-4)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-7, clock=rt.clock)
    assert result.info["sampling"] == "block means" and result.inner_loops == 128
    assert result.info["samples"] == "block means of 128 calls"


def test_the_timers_overhead_counts_against_per_query_timing():
    # 10 us calls, a 1 ns timer that costs 1 us per read-out: 20 x 1.001 us > 10 us, so block means.
    rt = OverheadRuntime(lambda i: 10e-6, overhead=1e-6)
    plan = TimingPlan(warmup_iters=1, warmup_s=0.0, min_samples=5, min_time_s=0.0)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-9, clock=rt.clock)
    assert result.info["timer_overhead_s"] == pytest.approx(1e-6)
    assert result.info["sampling"] == "block means" and result.inner_loops > 1
    slow = OverheadRuntime(lambda i: 30e-6, overhead=1e-6)
    assert run_plan(slow.block, plan, timer="fake", resolution_s=1e-9, clock=slow.clock).inner_loops == 1


def test_samples_kept_are_capped_but_the_plan_runs_its_course():
    rt = FakeRuntime(lambda i: 10e-6 * (1 + (i % 7)))
    plan = TimingPlan(warmup_iters=1, warmup_s=0.0, min_samples=5000, min_time_s=0.0, max_samples=100)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-9, clock=rt.clock)
    assert len(result.samples_s) == 100 == result.info["samples_kept"]
    assert result.info["samples_taken"] >= 5000
    # A uniform reservoir: every cost level of the rotation is still represented.
    assert len({round(v * 1e6) for v in result.samples_s}) == 7


def test_plan_rejects_unknown_sampling_and_tiny_caps():
    with pytest.raises(ValueError, match="sampling"):
        TimingPlan(sampling="fast")
    with pytest.raises(ValueError, match="max_samples"):
        TimingPlan(max_samples=1)


def test_measure_clock_reads_resolution_and_overhead_from_back_to_back_deltas():
    ticks = iter(range(0, 10**9, 250))  # a clock that advances 250 ns per read
    clock = measure_clock(lambda: next(ticks), reads=101)
    assert clock["resolution_s"] == pytest.approx(250e-9) and clock["overhead_s"] == pytest.approx(250e-9)
    coarse = iter(v for k in range(1000) for v in (k * 1000,) * 4)  # 1 us steps, 4 reads per step
    clock = measure_clock(lambda: next(coarse), reads=401)
    assert clock["resolution_s"] == pytest.approx(1e-6) and clock["overhead_s"] == 0.0
    real = measure_clock()
    assert real["resolution_s"] > 0 and real["overhead_s"] >= 0


def test_the_median_interval_is_the_binomial_order_statistics_one():
    from scipy.stats import binom

    rng = np.random.default_rng(1)
    x = np.sort(rng.lognormal(0.0, 0.3, 101))
    low, high = median_ci(x)
    # The ranks come from Binomial(n, 1/2): the interval [x(k), x(n-k+1)] covers the median with >= 95%.
    k = int(np.flatnonzero(x == low)[0])
    j = int(np.flatnonzero(x == high)[0])
    assert binom.cdf(j, 101, 0.5) - binom.cdf(k, 101, 0.5) >= 0.95 - 1e-9
    assert low < np.median(x) < high and j - k < 30
    assert median_ci([1.0, 2.0, 3.0]) is None  # too few values for 95%


def test_two_million_samples_are_summarized_in_bounded_memory():
    import tracemalloc

    rng = np.random.default_rng(2)
    samples = 0.001 * rng.lognormal(0.0, 0.2, 2_000_000)  # 16 MB of float64
    tracemalloc.start()
    try:
        stats = summarize(samples)
        kept = stored_samples(samples)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stats["n"] == 2_000_000
    low, high = stats["ci95_median_ms"]
    assert low < stats["median_ms"] < high and (high - low) / stats["median_ms"] < 0.01
    assert stats["median_ms"] == pytest.approx(np.median(samples) * 1e3)
    # A bootstrap would allocate 2000 x n x 8 bytes = 32 GB; a few copies of the samples are allowed.
    assert peak < 10 * samples.nbytes
    assert len(kept) == STORED_SAMPLES and kept[0] == samples[0] and kept[-1] == samples[-1]
    assert stored_samples(samples[:50]) == list(samples[:50])


class CPURuntime(FakeRuntime):
    """A fake runtime that also keeps a CPU clock (ns): each call works ``share`` of its wall time."""

    def __init__(self, cost, share, cpu_read_ns=100):
        super().__init__(cost)
        self.share, self.cpu_ns, self.cpu_read_ns = share, 0, cpu_read_ns

    def block(self, n, offset):
        took = super().block(n, offset)
        self.cpu_ns += round(took * self.share * 1e9)
        return took

    def cpu_clock(self):
        self.cpu_ns += self.cpu_read_ns  # reading the clock costs CPU time too
        return self.cpu_ns


def test_cpu_time_is_read_around_the_same_blocks_the_wall_clock_times():
    # Calls of 10..70 us (a rotation), each working 40% of its wall time (the rest: waiting).
    rt = CPURuntime(lambda i: 10e-6 * (1 + (i % 7)), share=0.4)
    plan = TimingPlan(warmup_iters=1, warmup_s=0.0, min_samples=3000, min_time_s=0.0, max_samples=200)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-9, clock=rt.clock, cpu_clock=rt.cpu_clock,
                      cpu_resolution_s=1e-9)
    assert result.info["cpu_timer"].endswith("cpu_clock") and "cpu_time_absent" not in result.info
    assert result.info["cpu_timer_overhead_s"] == pytest.approx(100e-9)
    # Every call is long enough for the CPU clock: one CPU sample per timed call, each that call's CPU
    # time (40% of its wall time, plus one read of the CPU clock), kept in a reservoir as the wall samples.
    assert result.info["cpu_calls_per_sample"] == 1 and result.info["cpu_samples_taken"] == 3000
    assert len(result.cpu_samples_s) == len(result.samples_s) == 200
    levels = {round((0.4 * 10e-6 * k + 100e-9) * 1e9) for k in range(1, 8)}
    assert {round(v * 1e9) for v in result.cpu_samples_s} == levels


def test_calls_too_short_for_the_cpu_clock_share_a_cpu_sample():
    # 10 us calls timed per query, on a CPU clock that costs 1 us per read (and steps by 1 us):
    # 20 x (1 + 1) us = 40 us, so one CPU sample spans 4 consecutive timed calls.
    rt = CPURuntime(lambda i: 10e-6, share=1.0, cpu_read_ns=1000)
    plan = TimingPlan(warmup_iters=1, warmup_s=0.0, min_samples=40, min_time_s=0.0)
    result = run_plan(rt.block, plan, timer="fake", resolution_s=1e-9, clock=rt.clock, cpu_clock=rt.cpu_clock)
    assert result.info["sampling"] == "per query" and result.info["cpu_calls_per_sample"] == 4
    assert result.cpu_samples_s == [pytest.approx((4 * 10e-6 + 1e-6) / 4)] * 10
    # A sampling phase shorter than one CPU sample gives none, and says why.
    other = CPURuntime(rt.cost, share=1.0, cpu_read_ns=1000)
    few = run_plan(other.block, TimingPlan(**{**plan.as_dict(), "min_samples": 3}), timer="fake",
                   resolution_s=1e-9, clock=other.clock, cpu_clock=other.cpu_clock)
    assert few.cpu_samples_s is None and few.info["cpu_time_absent"].startswith("no CPU sample: one needs 4")
    # Without a CPU clock, run_plan records nothing of one (a runtime in another process, CUDA events).
    plain = run_plan(FakeRuntime(lambda i: 10e-6).block, plan, timer="fake", resolution_s=1e-9)
    assert plain.cpu_samples_s is None and not any(k.startswith("cpu") for k in plain.info)


def test_time_calls_measures_this_process_cpu_time_which_waiting_does_not_use():
    import time

    plan = TimingPlan(warmup_iters=3, warmup_s=0.0, min_samples=20, min_time_s=0.0)
    result = time_calls([lambda: time.sleep(0.002)], plan)
    assert result.info["cpu_timer"] == "time.process_time_ns"
    assert len(result.cpu_samples_s) == len(result.samples_s) and all(v >= 0 for v in result.cpu_samples_s)
    # A sleeping call waits: at least 2 ms of wall time each, and next to no CPU time.
    assert min(result.samples_s) >= 0.002 and statistics.median(result.cpu_samples_s) < 0.001
