"""The timing contract between the host and a backend's session: what to measure and what comes back.

:class:`TimingPlan` goes to ``Session.time``, :class:`TimingResult` comes back; the loop that follows
the plan is :func:`harness.measure.timing.run_plan`. Standard library only: this file is copied to
remote devices beside the runner programs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Named plans a suite file selects with ``[settings.latency] profile = "..."``.
PROFILES: dict[str, dict] = {
    "smoke": dict(warmup_iters=10, warmup_s=0.1, min_samples=30, min_time_s=0.5, max_time_s=5.0),
    "default": dict(warmup_iters=20, warmup_s=0.5, min_samples=100, min_time_s=2.0, max_time_s=30.0),
    "nightly": dict(warmup_iters=50, warmup_s=2.0, min_samples=300, min_time_s=20.0, max_time_s=120.0),
    # MLPerf-like: a long minimum duration (MLPerf's single-stream minimum is 600 s).
    "submission": dict(warmup_iters=100, warmup_s=10.0, min_samples=1000, min_time_s=600.0,
                       max_time_s=1200.0),
}


#: How samples are taken: ``auto`` (per query where the clock allows) or ``block`` (block means).
SAMPLING = ("auto", "block")


@dataclass(frozen=True)
class TimingPlan:
    """How long to warm up and how many samples to take."""

    warmup_iters: int = 20
    warmup_s: float = 0.5
    min_samples: int = 100
    min_time_s: float = 2.0
    max_time_s: float = 30.0
    min_sample_s: float = 1e-4
    #: ``auto``: time every call by itself where one call lasts at least ``per_query_factor`` times the
    #: clock's resolution plus overhead (per-query samples, as MLPerf LoadGen), else block means;
    #: ``block``: always block means of a calibrated inner loop (the method before per-query timing).
    sampling: str = "auto"
    per_query_factor: float = 20.0
    #: At most this many samples are kept (a uniform reservoir over the whole sampling phase), so a
    #: long plan on a fast model keeps its duration without unbounded memory.
    max_samples: int = 10_000

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise ValueError(f"TimingPlan.sampling must be one of {', '.join(SAMPLING)}; got {self.sampling!r}")
        if self.max_samples < 3:
            raise ValueError(f"TimingPlan.max_samples must be at least 3; got {self.max_samples!r}")

    @property
    def max_warmup_s(self) -> float:
        """Warm-up gives up waiting for stability after this long."""
        return max(4 * self.warmup_s, 1.0)

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

    :param samples_s: seconds per call: one call each when ``inner_loops`` is 1 (per-query samples),
        else the mean over ``inner_loops`` calls (block means; ``info["sampling"]`` says which).
    :param inner_loops: calls per sample: 1 for per-query timing, else from calibration.
    :param warmup_iters: calls made before the first sample.
    :param timer: the clock used (``time.perf_counter_ns``, CUDA events, ``process.hrtime``...).
    :param info: anything else the runtime wants recorded (warm-up stability, timer resolution...).
    :param cpu_samples_s: process CPU seconds per call over the very blocks of ``samples_s`` (same order
        and length; all threads of the timing process), or ``None`` where the runtime did not measure
        them; then ``info["cpu_time_absent"]`` may say why (docs/measurements.md, ``cpu_ms``).
    """

    samples_s: list[float]
    inner_loops: int
    warmup_iters: int
    timer: str
    info: dict = field(default_factory=dict)
    cpu_samples_s: list[float] | None = None
