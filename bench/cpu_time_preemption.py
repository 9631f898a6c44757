"""What ``cpu_ms`` removes and what it keeps: one CPU-bound call timed alone, then beside busy processes.

A pure-Python call of about 10 milliseconds (longer than a scheduler time slice when the cores are shared)
is timed with the latency suite's own loop (``harness.api.time_calls``: wall clock and process CPU time
around the same calls), first as the machine is, then with one busy-looping process per core at the same
priority. The busy processes take the CPU away mid-call: the wall-clock median grows, the CPU-time median
(the work done) should not. Interference that slows the work itself (shared caches, memory bandwidth, a
virtual machine's host) is not removed, so read the figures with the machine's load.

    python bench/cpu_time_preemption.py             # about 10 s, one busy process per core for half of it
    python bench/cpu_time_preemption.py --work 4e5  # a longer call

Prints one JSON object. Say how loaded the machine was when you quote it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def timed(work: int, seconds: float) -> dict:
    from harness.api import TimingPlan, time_calls

    def call() -> int:
        total = 0
        for i in range(work):
            total += i * i
        return total

    plan = TimingPlan(warmup_iters=3, warmup_s=0.1, min_samples=20, min_time_s=seconds, max_time_s=2 * seconds)
    result = time_calls([call], plan)
    wall = statistics.median(result.samples_s) * 1e3
    cpu = statistics.median(result.cpu_samples_s) * 1e3
    return {"p50_ms": round(wall, 3), "cpu_ms": round(cpu, 3), "samples": len(result.samples_s),
            "cpu_samples": len(result.cpu_samples_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=float, default=2e5, help="loop iterations per call (2e5: about 11 ms here)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timing per condition")
    args = parser.parse_args()
    load = os.getloadavg()
    alone = timed(int(args.work), args.seconds)
    ctx = mp.get_context("spawn")
    hogs = [ctx.Process(target=busy, args=(args.seconds * 1.5 + 1,)) for _ in range(os.cpu_count() or 1)]
    for h in hogs:
        h.start()
    time.sleep(0.5)
    try:
        crowded = timed(int(args.work), args.seconds)
    finally:
        for h in hogs:
            h.join()
    print(json.dumps({"alone": alone, "beside_busy_processes": crowded, "busy_processes": len(hogs),
                      "wall_growth": round(crowded["p50_ms"] / alone["p50_ms"] - 1, 3),
                      "cpu_growth": round(crowded["cpu_ms"] / alone["cpu_ms"] - 1, 3),
                      "loadavg_at_start": [round(v, 2) for v in load],
                      "loadavg_at_end": [round(v, 2) for v in os.getloadavg()]}, indent=1))


if __name__ == "__main__":
    main()
