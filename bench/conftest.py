"""Benchmarks of the harness itself: run with ``python -m pytest bench -n 0`` (see tox env ``bench``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tmp_path):
    """``cli(*args) -> CompletedProcess`` running the real CLI with a private cache under tmp_path."""
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))

    def run(*args, check=True):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=ROOT)
        if check and proc.returncode != 0:
            raise AssertionError(proc.stderr)
        return proc

    return run
