"""Issue 8's figures: suites/smoke.toml with the local executor and with Ray on the same machine,
each from a cold cache, and the memory Ray's own processes use (peak summed RSS, sampled)."""

import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT

pytest.importorskip("ray")


def ray_rss_mb() -> float:
    """Summed RSS of the Ray processes (raylet, GCS, agents, workers) now, in MiB."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            if "ray" not in cmd or "pytest" in cmd:
                continue
            if not any(k in cmd for k in ("raylet", "gcs_server", "ray::", "default_worker", "dashboard",
                                          "runtime_env", "log_monitor", "monitor.py")):
                continue
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def timed_run(tmp_path, name, *extra):
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / f"cache-{name}"), RAY_AUTH_MODE="disabled")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(ROOT / "suites" / "smoke.toml"),
                           "--db", str(tmp_path / f"{name}.db"), "-q", *extra], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return time.perf_counter() - t0


def test_smoke_local_against_ray(benchmark, tmp_path):
    local = timed_run(tmp_path, "local")
    peak = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], ray_rss_mb())
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ray = timed_run(tmp_path, "ray", "--executor", "ray")
    finally:
        stop.set()
        sampler.join()
    benchmark.extra_info.update({"local_s": local, "ray_s": ray, "ray_peak_rss_mb": peak[0]})
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\nsmoke cold: local executor {local:.1f} s, ray executor {ray:.1f} s; "
          f"Ray processes' peak RSS {peak[0]:.0f} MiB")
