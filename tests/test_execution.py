"""Execution: failure isolation, resume after SIGKILL, completed runs, no-resume reruns."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

FAULTY_DIR = Path(__file__).parent / "faulty"

FAILURES = """
name = "failures"
seeds = [0]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 64 }]
methods = [{ name = "dense" }, { name = "faulty", mode = ["raise", "hang", "abort", "oom"] }]
backends = ["onnxruntime-cpu"]
suites = ["latency", "size"]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 64 }]
methods = ["dense"]
backends = [{ name = "faulty-backend", mode = ["raise", "abort"] }]
suites = ["latency"]

[settings.latency]
profile = "smoke"
min_time_s = 0.05
min_samples = 5

[settings.execution]
# Generous: the limit covers worker start-up, the torch import and the artifact build, which
# take seconds on a loaded two-core CI machine; only the "hang" cell should ever reach it.
timeout_s = 30
memory_limit_mb = 3000
"""

MANY_CELLS = """
name = "resume"
seeds = [0, 1]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 32 }]
methods = [{ name = "dense" }, { name = "random", sparsity = [0.3, 0.6, 0.9] }]
backends = ["onnxruntime-cpu", "torch-cpu"]
suites = ["latency", "size"]

[settings.latency]
profile = "smoke"
min_time_s = 0.3
min_samples = 5
"""


def cells(db):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM cells ORDER BY id")]
    finally:
        conn.close()


def test_failures_are_isolated_and_recorded(harness_cli, suite_file, tmp_path):
    suite = suite_file(FAILURES)
    db = tmp_path / "f.db"
    proc = harness_cli("--plugins-dir", FAULTY_DIR, "run", suite, "--db", db, "-q")
    assert proc.returncode == 1, proc.stderr
    rows = cells(db)
    by = {}
    for r in rows:
        mp = json.loads(r["method_params"])
        bp = json.loads(r["backend_params"]) if r["backend_params"] else {}
        by[(r["method"], mp.get("mode"), r["backend"], bp.get("mode"), r["suite"])] = r
    # The dense cells ran and kept their results despite the failures around them.
    for key in (("dense", None, "onnxruntime-cpu", None, "latency"), ("dense", None, None, None, "size")):
        assert by[key]["status"] == "ok", by[key]["reason"]
    fail = {mode: by[("faulty", mode, "onnxruntime-cpu", None, "latency")] for mode in
            ("raise", "hang", "abort", "oom")}
    assert all(r["status"] == "failed" for r in fail.values())
    assert "RuntimeError: planned failure" in fail["raise"]["reason"]
    assert "timed out after 30 s" in fail["hang"]["reason"]
    assert "SIGABRT" in fail["abort"]["reason"]
    assert "MemoryError" in fail["oom"]["reason"]
    # A failed artifact fails the other suites of the same artifact with the same cause, without rerunning it.
    assert by[("faulty", "hang", None, None, "size")]["status"] == "failed"
    assert "artifact build failed earlier" in by[("faulty", "hang", None, None, "size")]["reason"]
    # Failures inside a backend's session (suite stage) are isolated too.
    assert "RuntimeError: planned failure" in by[("dense", None, "faulty-backend", "raise", "latency")]["reason"]
    assert "SIGABRT" in by[("dense", None, "faulty-backend", "abort", "latency")]["reason"]
    assert "during suite" in by[("dense", None, "faulty-backend", "abort", "latency")]["reason"]
    # Measurements of ok cells are there, failed cells have none.
    conn = sqlite3.connect(db)
    ok_ids = [r["id"] for r in rows if r["status"] == "ok"]
    failed_ids = [r["id"] for r in rows if r["status"] == "failed"]
    n_ok = conn.execute(f"SELECT count(*) FROM measurements WHERE cell_id IN ({','.join(map(str, ok_ids))})")
    assert n_ok.fetchone()[0] > 0
    n_failed = conn.execute(
        f"SELECT count(*) FROM measurements WHERE cell_id IN ({','.join(map(str, failed_ids))})")
    assert n_failed.fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _recorded(db) -> int:
    if not Path(db).exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            return conn.execute("SELECT count(*) FROM cells").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def test_resume_after_sigkill_records_every_cell_exactly_once(suite_file, tmp_path):
    suite = suite_file(MANY_CELLS)
    db = tmp_path / "r.db"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _recorded(db) < 6 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _recorded(db)
    assert before >= 6
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{before} already recorded" in done.stderr
    rows = cells(db)
    keys = [r["cell_key"] for r in rows]
    assert len(keys) == len(set(keys))  # never duplicated
    assert {r["run_id"] for r in rows} == {1}  # resumed the same run
    # 2 seeds x 4 methods x (2 backends x latency + size) = 24 cells, every one exactly once
    assert len(rows) == 24
    assert all(r["status"] == "ok" for r in rows)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT status FROM runs").fetchall() == [("complete",)]
    # No orphaned measurements from the killed cell.
    orphans = conn.execute("SELECT count(*) FROM measurements WHERE cell_id NOT IN (SELECT id FROM cells)")
    assert orphans.fetchone()[0] == 0


def test_complete_run_measures_nothing_and_no_resume_measures_again(harness_cli, suite_file, tmp_path):
    suite = suite_file(MANY_CELLS.replace("seeds = [0, 1]", "seeds = [0]"))
    db = tmp_path / "c.db"
    first = harness_cli("run", suite, "--db", db, "-q")
    assert first.returncode == 0, first.stderr
    assert "12 cells recorded now" in first.stderr
    again = harness_cli("run", suite, "--db", db, "-q")
    assert again.returncode == 0
    assert "0 cells recorded now" in again.stderr and "12 already recorded" in again.stderr
    fresh = harness_cli("run", suite, "--db", db, "-q", "--no-resume")
    assert fresh.returncode == 0
    assert "run 2 (started): 12 cells recorded now" in fresh.stderr
    rows = cells(db)
    run1 = {r["cell_key"]: r["artifact_key"] for r in rows if r["run_id"] == 1}
    run2 = {r["cell_key"]: r["artifact_key"] for r in rows if r["run_id"] == 2}
    assert run1 == run2  # the same cells, sharing the cached artifacts
    artifacts = list((tmp_path / "cache" / "artifacts").iterdir())
    assert len([a for a in artifacts if not a.name.startswith(".")]) == 4
