"""The timing methodology every backend follows, after pyperf.

A backend's session owns its timing loop (inside the runtime that executes the
model); this module gives the shared plan and, for runtimes that live in the
harness's own Python process, the loop itself (:func:`time_calls`) and a base
class (:class:`InProcessSession`).

The plan: warm up for at least ``warmup_iters`` calls and ``warmup_s`` seconds;
calibrate an inner loop so one sample lasts at least ``min_sample_s`` (well
above the timer's resolution); then take samples until there are at least
``min_samples`` and ``min_time_s`` has passed (and at most ``max_time_s``).
Inputs rotate among several distinct batches so caches do not flatter a result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Named plans a suite file selects with ``[settings.latency] profile = "..."``.
PROFILES: dict[str, dict] = {
    "smoke": dict(warmup_iters=10, warmup_s=0.1, min_samples=30, min_time_s=0.5, max_time_s=5.0),
    "default": dict(warmup_iters=20, warmup_s=0.5, min_samples=100, min_time_s=2.0, max_time_s=30.0),
    "nightly": dict(warmup_iters=50, warmup_s=2.0, min_samples=300, min_time_s=20.0, max_time_s=120.0),
}


@dataclass(frozen=True)
class TimingPlan:
    """How long to warm up and how many samples to take."""

    warmup_iters: int = 20
    warmup_s: float = 0.5
    min_samples: int = 100
    min_time_s: float = 2.0
    max_time_s: float = 30.0
    min_sample_s: float = 1e-4

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> TimingPlan:
        """The plan of a named profile, with overrides (``None`` values ignored)."""
        values = dict(PROFILES[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def as_dict(self) -> dict:
        """JSON-able form, stored with each latency measurement."""
        return asdict(self)


@dataclass
class TimingResult:
    """What a timing loop returns.

    :param samples_s: seconds per call (each sample is the mean over ``inner_loops`` calls).
    :param inner_loops: calls per sample, from calibration.
    :param warmup_iters: calls made before the first sample.
    :param timer: the clock used (``time.perf_counter_ns``, CUDA events, ``process.hrtime``...).
    :param info: anything else the runtime wants recorded.
    """

    samples_s: list[float]
    inner_loops: int
    warmup_iters: int
    timer: str
    info: dict = field(default_factory=dict)


def time_calls(calls: Sequence[Callable[[], Any]], plan: TimingPlan) -> TimingResult:
    """Time a rotation of zero-argument calls (one per distinct input batch) with ``plan``.

    The calls should be bound in advance (feeds prepared, arguments resolved), so that
    the loop measures the runtime, not the harness.
    """
    if not calls:
        raise ValueError("time_calls needs at least one call")
    clock = time.perf_counter_ns
    n = len(calls)
    # Warm-up: a minimum count and a minimum time, rotating inputs.
    i = 0
    start = clock()
    while i < plan.warmup_iters or (clock() - start) < plan.warmup_s * 1e9:
        calls[i % n]()
        i += 1
    warmup_iters = i
    # Calibration: double the inner loop until one sample is long enough.
    inner = 1
    while True:
        t0 = clock()
        for j in range(inner):
            calls[j % n]()
        elapsed = clock() - t0
        if elapsed >= plan.min_sample_s * 1e9 or inner >= 1 << 20:
            break
        inner *= 2
    samples: list[float] = []
    k = 0
    begin = clock()
    deadline = begin + plan.max_time_s * 1e9
    while True:
        t0 = clock()
        for _ in range(inner):
            calls[k % n]()
            k += 1
        t1 = clock()
        samples.append((t1 - t0) / inner / 1e9)
        if len(samples) >= plan.min_samples and t1 - begin >= plan.min_time_s * 1e9:
            break
        if t1 >= deadline and len(samples) >= 3:
            break
    return TimingResult(samples_s=samples, inner_loops=inner, warmup_iters=warmup_iters,
                        timer="time.perf_counter_ns")


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

    def close(self) -> None:
        """Nothing to release by default."""


def summarize(samples_s: Sequence[float], *, seed: int = 0) -> dict:
    """Statistics of timing samples, in milliseconds.

    median, p90, p99, mean, stdev and MAD come from pyperf's statistics; the 95%
    confidence interval of the median is a percentile bootstrap (scipy). ``unstable``
    follows pyperf's rule: coefficient of variation above 10%.
    """
    import numpy as np
    import pyperf

    values = [float(v) for v in samples_s]
    bench = pyperf.Benchmark([pyperf.Run(values, metadata={"name": "cell", "unit": "second"},
                                         collect_metadata=False)])
    ms = 1e3
    n = len(values)
    mean = bench.mean()
    stdev = bench.stdev() if n > 1 else 0.0
    stats = {
        "n": n,
        "median_ms": bench.median() * ms,
        "p90_ms": bench.percentile(90) * ms,
        "p99_ms": bench.percentile(99) * ms,
        "mean_ms": mean * ms,
        "stdev_ms": stdev * ms,
        "mad_ms": (bench.median_abs_dev() if n > 1 else 0.0) * ms,
        "min_ms": min(values) * ms,
        "max_ms": max(values) * ms,
        "cv": (stdev / mean) if mean > 0 else 0.0,
    }
    if n >= 5:
        from scipy.stats import bootstrap

        res = bootstrap((np.asarray(values),), np.median, confidence_level=0.95, n_resamples=2000,
                        method="percentile", rng=np.random.default_rng(seed))
        stats["ci95_median_ms"] = [float(res.confidence_interval.low) * ms,
                                   float(res.confidence_interval.high) * ms]
    stats["unstable"] = stats["cv"] > 0.10
    return stats
