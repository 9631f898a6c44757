"""Start-up: ``harness --help`` and ``harness plugins`` must stay instant (torch is not imported)."""

import shutil
import subprocess
import sys


def _harness():
    exe = shutil.which("harness")
    return [exe] if exe else [sys.executable, "-m", "harness.cli"]


def test_help(benchmark):
    benchmark.pedantic(subprocess.run, args=([*_harness(), "--help"],), kwargs={"capture_output": True},
                       rounds=10, warmup_rounds=1)


def test_plugins(benchmark):
    benchmark.pedantic(subprocess.run, args=([*_harness(), "plugins"],), kwargs={"capture_output": True},
                       rounds=10, warmup_rounds=1)
