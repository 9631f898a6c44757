"""How long and how much memory refusing an oversized plan takes, against expanding it.

Usage: ``python bench/plan_size.py [DATASET_SIZES]`` (default 100: a 1,000,000-cell grid of 10 seeds x 100
dataset sizes x 1,000 sparsities, one suite). Refusing is measured first, then expanding (``--yes``).
"""

from __future__ import annotations

import resource
import sys
import time

from harness.plan.size import CELL_LIMIT, PlanTooLarge
from harness.plan.suitefile import plan_from_dict
from harness.plugin.manager import load_host


def grid(n_sizes: int) -> dict:
    """A suite file's data: 10 seeds x ``n_sizes`` dataset sizes x 1,000 sparsities, the size suite."""
    return {"name": "big", "seeds": list(range(10)), "matrix": [{
        "models": ["mlp"], "datasets": [{"name": "synthetic", "n": list(range(8, 8 + n_sizes))}],
        "methods": [{"name": "random", "sparsity": [round(0.0001 * i, 4) for i in range(1, 1001)]}],
        "suites": ["size"]}]}


def measure(data: dict, registry, max_cells) -> tuple[str, float, float]:
    """What planning ``data`` did, how long it took and the process's peak memory growth (MiB)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        outcome = f"{len(plan_from_dict(data, registry, max_cells=max_cells).cells):,} cells planned"
    except PlanTooLarge as exc:
        outcome = f"refused ({exc.cells:,} cells > {exc.limit:,})"
    seconds = time.perf_counter() - t0
    return outcome, seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def main() -> None:
    registry = load_host().registry
    data = grid(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
    for label, limit in (("refused (the default limit)", CELL_LIMIT), ("expanded (--yes)", None)):
        outcome, seconds, peak = measure(data, registry, limit)
        print(f"{label}: {outcome} in {seconds:.2f} s, peak memory +{peak:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
