"""This machine's attainable peak and the quickstart's roofline fractions: ``python bench/roofline_figures.py``.

Measures the peak afresh (fp32 matmul GFLOP/s and copy GB/s at 1 thread and at every core, with
the first-measurement cost), then runs ``suites/quickstart.toml`` through the real CLI (a private
cache, so the peak is measured there once more, as a first run would) and prints each latency
cell's ``roofline_fraction`` and implied GFLOP/s. Run it on a quiet machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from harness.measure.peak import measure_cpu

    cores = len(os.sched_getaffinity(0))
    print("| threads | matmul GFLOP/s | library | copy GB/s | library | measured in |")
    print("|---|---|---|---|---|---|")
    for threads in sorted({1, 2, cores}):
        p = measure_cpu(threads)
        print(f"| {threads} | {p['matmul_gflops']:,.1f} | {p['library']} | {p['bandwidth_gbs']:,.1f} | "
              f"{p['bandwidth_library']} | {p['measured_s']:.2f} s |")
    work = Path(tempfile.mkdtemp(prefix="roofline-figures-"))
    db = work / "q.db"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(work / "cache"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(ROOT / "suites" / "quickstart.toml"),
                           "--db", str(db), "-q"], env=env, capture_output=True, text=True)
    print(f"\nquickstart: {time.perf_counter() - t0:.0f} s, exit {proc.returncode} {proc.stderr.strip()[-2000:]}\n")
    rows = sqlite3.connect(db).execute(
        "SELECT c.model, c.method, c.method_params, c.backend, m.params, m.value, m.info, m.flag "
        "FROM measurements m JOIN cells c ON c.id = m.cell_id WHERE m.metric = 'roofline_fraction' "
        "ORDER BY c.model, c.method, c.method_params, c.backend, m.params")
    print("| model | method | backend | batch | roofline_fraction | implied GFLOP/s | peak GFLOP/s | flag |")
    print("|---|---|---|---|---|---|---|---|")
    for model, method, mparams, backend, params, value, info, flag in rows:
        roof = json.loads(info)["roofline"]
        label = method + ("" if mparams in (None, "{}") else mparams)
        print(f"| {model} | {label} | {backend} | {json.loads(params)['batch_size']} | {value:.4f} | "
              f"{roof['implied_gflops']:,.2f} | {roof['peak_gflops']:,.1f} | {flag or ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
