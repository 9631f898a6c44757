"""Which test fits a metric in a comparison, and the tests themselves (see docs/compare.md).

The unit of variation of a timing metric is the run (or the process), not the raw sample: thousands
of samples from one process are not independent draws of what the next run will measure (the
machine's state drifts from one run to the next), so a test on raw samples finds any drift
"significant". Two tests use runs or processes as the observations:

- **per-process** (``welch-t``): when both runs timed the cell in several processes (the latency
  suite's ``processes``), Welch's t-test on the logs of the processes' values;
- **history** (``history-t``): otherwise the cell's values in earlier runs on the same machine are
  the sample of what an unchanged run gives, and the new value is tested against them with the
  prediction interval of a normal sample (Student's t with ``k - 1`` degrees of freedom, on logs).

Without either, a timing change is ``untested``: one run against one run says nothing about the
noise between runs, so it is never a regression.

The p-values come from scipy's Student-t distribution function, ``scipy.special.stdtr`` (what
``scipy.stats.t.sf`` and ``scipy.stats.ttest_ind`` compute them with): importing ``scipy.stats`` costs
about a second, ``scipy.special`` a quarter of that. ``tests/query/test_noise.py`` checks the tests and
:func:`benjamini_hochberg` against ``scipy.stats``.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Statistics of spread, not of speed: reported, never a regression by default.
DISPERSION = frozenset({"stdev_ms", "mad_ms", "cv", "iqr_ms"})
_DISPERSION_RE = re.compile(r"(^|_)(stdev|std|mad|cv|iqr|variance)(_|$)")
#: pyperf's rule: a coefficient of variation above this marks a measurement unstable.
UNSTABLE_CV = 0.10
#: Earlier runs of a cell needed for the history test.
MIN_HISTORY = 3
#: Processes per run needed for the per-process test.
MIN_PROCESSES = 3
#: Which per-process statistic stands for a metric (the latency suite's ``stats["per_process"]``).
PER_PROCESS_KEY = {"p50_ms": "median_ms", "p10_ms": "p10_ms", "mean_ms": "mean_ms", "p90_ms": "p90_ms",
                   "p99_ms": "p99_ms", "cpu_ms": "cpu_median_ms",
                   "throughput_sps": "mean_ms", "speedup": "median_ms", "speedup_efficiency": "median_ms",
                   "roofline_fraction": "median_ms"}


def is_dispersion(metric: str) -> bool:
    """Whether ``metric`` measures spread (stdev, MAD, CV...), not a level."""
    return metric in DISPERSION or bool(_DISPERSION_RE.search(metric))


def kind(metric: str, sampled: bool, test_dispersion: bool = False, unit: str | None = None) -> str:
    """``dispersion``, ``timing`` (values computed from raw samples: they vary from run to run) or
    ``deterministic`` (no samples: accuracy, size; the same for a fixed seed; and pass/fail checks)."""
    if is_dispersion(metric) and not test_dispersion:
        return "dispersion"
    return "timing" if sampled and unit != "bool" else "deterministic"


def _logs(values: Any) -> Any:
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return np.log(v) if len(v) and (v > 0).all() else v


def per_process_p(base: list | None, new: list | None) -> float | None:
    """Welch's t-test p-value (two-sided) on the logs of two runs' per-process values; ``None`` when
    either run has fewer than :data:`MIN_PROCESSES` processes."""
    import numpy as np
    from scipy.special import stdtr

    if not base or not new or len(base) < MIN_PROCESSES or len(new) < MIN_PROCESSES:
        return None
    a, b = _logs(base), _logs(new)
    if len(a) < MIN_PROCESSES or len(b) < MIN_PROCESSES:
        return None
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    # scipy.stats.ttest_ind(a, b, equal_var=False), computed as scipy computes it: each mean's variance
    # (the sample variance over n), Welch-Satterthwaite degrees of freedom, Student's t on both sides.
    m1, m2 = a.mean(), b.mean()
    vn1 = np.mean((a - m1) ** 2) * (len(a) / (len(a) - 1)) / len(a)
    vn2 = np.mean((b - m2) ** 2) * (len(b) / (len(b) - 1)) / len(b)
    df = (vn1 + vn2) ** 2 / (vn1 ** 2 / (len(a) - 1) + vn2 ** 2 / (len(b) - 1))
    t = (m1 - m2) / np.sqrt(vn1 + vn2)
    return float(2 * stdtr(df, -abs(t)))


def history_p(earlier: Any, new: float) -> float | None:
    """Two-sided p-value of ``new`` against the prediction interval of the ``earlier`` runs' values
    (``t = (x - mean) / (s * sqrt(1 + 1/k))``, Student's t with ``k - 1`` degrees of freedom, on logs
    where every value is positive); ``None`` with fewer than :data:`MIN_HISTORY` earlier values."""
    import numpy as np
    from scipy.special import stdtr

    e = np.asarray(earlier, dtype=float)
    e = e[np.isfinite(e)]
    if len(e) < MIN_HISTORY or not math.isfinite(new):
        return None
    positive = bool((e > 0).all()) and new > 0
    h, x = (np.log(e), math.log(new)) if positive else (e, float(new))
    k = len(h)
    s = float(h.std(ddof=1))
    if s == 0:
        return 1.0 if x == float(h[0]) else 0.0
    stat = (x - float(h.mean())) / (s * math.sqrt(1 + 1 / k))
    return float(2 * stdtr(k - 1, -abs(stat)))  # scipy.stats.t.sf(abs(stat), k - 1), doubled


def benjamini_hochberg(ps: Any) -> Any:
    """Benjamini-Hochberg adjusted p-values (q-values) of ``ps``, in their order: what
    ``scipy.stats.false_discovery_control(ps, method="bh")`` computes, without importing ``scipy.stats``."""
    import numpy as np

    p = np.asarray(ps, dtype=float)
    if p.size <= 1:
        return p
    order = np.argsort(p)
    ranked = p[order] * (len(p) / np.arange(1, len(p) + 1, dtype=float))
    np.minimum.accumulate(ranked[::-1], out=ranked[::-1])
    q = np.empty_like(ranked)
    q[order] = ranked
    return np.clip(q, 0.0, 1.0)


def unstable_note(cv_base: float, cv_new: float) -> str | None:
    """``unstable: CV 62% in the new run`` when either side's coefficient of variation is above 10%."""
    bits = [f"CV {cv:.0%} in the {side} run" for side, cv in (("base", cv_base), ("new", cv_new))
            if cv == cv and cv is not None and cv > UNSTABLE_CV]
    return f"unstable: {', '.join(bits)}" if bits else None


def widened_threshold(threshold: float, ci_base: float, ci_new: float) -> float:
    """The threshold an unstable measurement's change must clear: ``threshold`` plus the relative
    half-widths of both medians' 95% confidence intervals (infinite when either is unknown: then an
    unstable change never counts)."""
    if not (ci_base == ci_base and ci_new == ci_new) or ci_base is None or ci_new is None:
        return math.inf
    return threshold + abs(ci_base) + abs(ci_new)
