"""How often `harness compare previous latest` cries wolf, and how often it catches a real 10% slowdown.

Real runs, through the CLI, at the latency suite's default settings (``--quick``: the smoke profile and
fewer runs), of one small cell set on the ``repeat-cpu`` fixture backend (tests/fixtures/slowdown: every
timed call runs the model ``HARNESS_TOY_WORK`` times, 10 by default):

1. ``--quiet`` unchanged reruns after a first run, each compared with the one before it: every
   regression (or improvement) found is a false alarm (target: 0);
2. ``--slow`` trials, each a copy of the store after the quiet runs plus one run doing 10% more real
   work per call (11 model runs instead of 10: the same function, the same cell), compared with the
   previous run: a trial is caught when compare exits 1 with a latency regression (``p10_ms``, ``p50_ms`` or
   ``cpu_ms``, the process CPU time per call: on a busy machine the wall-clock ones move with the load, see
   docs/compare.md) (target: 9 of 10); ``caught_by`` says how many trials each metric caught.

    python bench/false_alarms.py            # 10 + 1 quiet runs, 10 slow trials (5 to 15 minutes on 2 cores)
    python bench/false_alarms.py --quick    # 4 + 1 quiet runs, 3 slow trials, smoke profile

Prints one JSON object with the figures. Say how loaded the machine was when you quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "slowdown"
SUITE = (FIXTURE / "suite.toml.in").read_text()
#: The metrics a caught trial may be caught by: wall-clock latency, and the CPU time of the same calls.
HEADLINE = ("p10_ms", "p50_ms", "cpu_ms")


def harness(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          timeout=1800)


def run(suite: Path, db: Path, env: dict) -> None:
    done = harness(["run", str(suite), "--db", str(db), "--no-resume", "--tag", "nightly", "-q"], env)
    if done.returncode != 0:
        raise SystemExit(f"harness run failed ({done.returncode}):\n{done.stderr[-3000:]}")


def compare(db: Path, env: dict) -> dict:
    done = harness(["compare", "previous", "latest", "--db", str(db), "--all", "--format", "json"], env)
    if done.returncode not in (0, 1):
        raise SystemExit(f"harness compare failed ({done.returncode}):\n{done.stderr[-3000:]}")
    rows = json.loads(done.stdout)
    latency = ("p50_ms", "p10_ms", "p90_ms", "p99_ms", "mean_ms", "throughput", "cpu_ms")
    timing = [r for r in rows if r["metric"].startswith(latency)]
    return {"exit": done.returncode,
            "regressions": sorted(r["metric"] for r in rows if r["verdict"] == "regression"),
            "improvements": sorted(r["metric"] for r in rows if r["verdict"] == "improvement"),
            "unstable": sorted(r["metric"] for r in rows if r["verdict"] == "unstable"),
            "untested": sorted(r["metric"] for r in rows if r["verdict"] == "untested"),
            "changes": {r["metric"]: round(r["change"], 4) for r in rows
                        if r["metric"].startswith(HEADLINE)},
            "tests": sorted({r["test"] for r in timing})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke profile, 4 + 1 quiet runs, 3 slow trials")
    parser.add_argument("--quiet", type=int, default=None, help="unchanged reruns compared (default 10; quick 4)")
    parser.add_argument("--slow", type=int, default=None, help="slowdown trials (default 10; quick 3)")
    parser.add_argument("--slowdown", type=float, default=0.10, help="extra real work per call (0.10: 10%%)")
    args = parser.parse_args()
    quiet = args.quiet if args.quiet is not None else (4 if args.quick else 10)
    slow = args.slow if args.slow is not None else (3 if args.quick else 10)
    work = 10
    slow_work = round(work * (1 + args.slowdown))
    if slow_work == work:
        raise SystemExit(f"--slowdown {args.slowdown}: too small for {work} repeats per call")
    tmp = Path(tempfile.mkdtemp(prefix="false-alarms-"))
    env = dict(os.environ, HARNESS_PLUGINS_DIR=str(FIXTURE),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("HARNESS_CACHE_DIR", str(tmp / "cache"))
    suite = tmp / "suite.toml"
    suite.write_text(SUITE.format(name="false-alarms", batch_sizes="[1, 32]",
                                  profile="smoke" if args.quick else "default"))
    db = tmp / "l.db"
    began = time.time()
    load = os.getloadavg()
    quiet_env = dict(env, HARNESS_TOY_WORK=str(work))
    run(suite, db, quiet_env)
    nights = []
    for _ in range(quiet):
        run(suite, db, quiet_env)
        nights.append(compare(db, quiet_env))
    trials = []
    for i in range(slow):
        copy = tmp / f"trial{i}.db"
        shutil.copy(db, copy)
        run(suite, copy, dict(env, HARNESS_TOY_WORK=str(slow_work)))
        trials.append(compare(copy, quiet_env))
    false = sum(len(n["regressions"]) + len(n["improvements"]) for n in nights)
    def caught_by(metric: str | tuple) -> int:
        return sum(1 for t in trials if t["exit"] == 1 and any(m.startswith(metric) for m in t["regressions"]))

    def false_by(metric: str) -> int:
        return sum(1 for n in nights for m in n["regressions"] + n["improvements"] if m.startswith(metric))

    caught = caught_by(HEADLINE)
    print(json.dumps({
        "profile": "smoke" if args.quick else "default", "quiet_reruns": quiet,
        "false_alarms": false, "quiet_nights_exit_1": sum(n["exit"] == 1 for n in nights),
        "false_alarms_by": {m: false_by(m) for m in HEADLINE},
        "slowdown": f"{slow_work}/{work} model runs per call", "slow_trials": slow, "caught": caught,
        "caught_by": {m: caught_by(m) for m in HEADLINE},
        "loadavg_at_start": [round(v, 2) for v in load], "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
        "seconds": round(time.time() - began), "nights": nights, "trials": trials}, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
