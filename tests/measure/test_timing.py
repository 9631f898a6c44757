"""The timing methodology: warm-up until stable, calibration, sampling, statistics, profiles."""

import math
import statistics

import numpy as np
import pytest

from harness.api import TimingPlan
from harness.measure.timing import PROFILES, run_plan, summarize, time_calls


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
    assert result.inner_loops == 16  # smallest power of two with 16 x ~10 us >= 100 us
    assert len(result.samples_s) >= 20
    assert all(v == pytest.approx(10e-6, rel=0.2) for v in result.samples_s)
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
    assert stats["p99_ms"] == pytest.approx(np.percentile(ms, 99))
    assert stats["mean_ms"] == pytest.approx(ms.mean())
    assert stats["stdev_ms"] == pytest.approx(ms.std(ddof=1))
    assert stats["mad_ms"] == pytest.approx(np.median(np.abs(ms - np.median(ms))))
    low, high = stats["ci95_median_ms"]
    assert low <= stats["median_ms"] <= high
    assert stats["unstable"] is False
    assert summarize(samples) == stats  # the bootstrap is seeded


def test_high_variation_is_flagged_unstable():
    stats = summarize([0.001, 0.002] * 10)
    assert stats["cv"] > 0.10 and stats["unstable"] is True


def test_profiles():
    assert set(PROFILES) == {"smoke", "default", "nightly", "submission"}
    assert TimingPlan.profile("submission").min_time_s == 600.0
    assert TimingPlan.profile("nightly", min_time_s=None).min_time_s == PROFILES["nightly"]["min_time_s"]
    assert TimingPlan.profile("smoke", min_samples=7).min_samples == 7
    assert statistics.mean([PROFILES["smoke"]["min_time_s"]]) < PROFILES["nightly"]["min_time_s"]
