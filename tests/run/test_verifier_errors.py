"""Errors are errors: a verifier whose child process cannot load its plugins fails the cell and the
run (exit status 1), with the reason recorded; it is never scored as ``unknown`` in an ``ok`` cell."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

#: Loads in the driver and the cell's worker, raises in each verifier child (a plugin whose import
#: depends on its environment, as one that loads a native solver library).
BROKEN_IN_CHILD = '''
import sys

if getattr(sys.modules["__main__"].__spec__, "name", None) == "harness.verify.child":
    raise ImportError("libsolver.so: cannot open shared object file")
'''

SUITE = """
name = "broken-host"
seeds = [0]

[[verification]]
benchmarks = [{ name = "folder", path = "bench" }]
verifiers = ["milp", "crown"]

[settings.verification]
timeout_s = 30
"""


def test_a_broken_verifier_host_fails_the_cell_and_the_run(toy_vnnlib, tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "instances.csv").write_text(f"{toy_vnnlib.onnx},{toy_vnnlib.holds},30\n"
                                         f"{toy_vnnlib.onnx},{toy_vnnlib.violated},30\n")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fragile.py").write_text(BROKEN_IN_CHILD)
    (tmp_path / "suite.toml").write_text(SUITE)
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "--plugins-dir", str(plugins), "run", "suite.toml",
                           "--db", "v.db", "-q"], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    conn = sqlite3.connect(tmp_path / "v.db")
    cells = conn.execute("SELECT status, reason FROM cells").fetchall()
    results = conn.execute("SELECT COUNT(*) FROM results WHERE suite = 'verification'").fetchone()[0]
    conn.close()
    assert len(cells) == 2 and all(status == "failed" for status, _ in cells), cells
    for _, reason in cells:
        assert "VerifierFailed" in reason and "loading the plugins failed" in reason and "libsolver.so" in reason
    assert results == 0  # no score, no unknown counted for a host that never ran


def test_the_same_run_without_the_broken_plugin_is_ok(toy_vnnlib, tmp_path):
    """The control: the same benchmark and verifiers, a healthy host: every cell ok, exit status 0."""
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "instances.csv").write_text(f"{toy_vnnlib.onnx},{toy_vnnlib.holds},30\n")
    (tmp_path / "suite.toml").write_text(SUITE)
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "suite.toml", "--db", "v.db", "-q"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(tmp_path / "v.db")
    assert {s for (s,) in conn.execute("SELECT status FROM cells")} == {"ok"}
    conn.close()
