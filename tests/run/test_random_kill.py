"""The random-kill loop: ``kill -9`` of the driver, or of its whole process group, at seeded random moments.

After every kill the database must pass ``PRAGMA integrity_check`` and hold no cell twice; after
the last, a resumed run completes with every cell recorded exactly once, in one run. The fast
variant (2 kills) runs with the tests; the full loop (12 kills, both targets) is in the slow group:
``python -m pytest -n 0 -m slow tests/run/test_random_kill.py``. Recorded in docs/reliability.md.
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

SUITE = """
name = "kill-loop"
seeds = [0, 1, 2]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 32 }]
methods = [{ name = "dense" }, { name = "random", sparsity = [0.5, 0.9] }]
backends = ["onnxruntime-cpu"]
suites = ["latency", "size"]

[settings.latency]
profile = "smoke"
min_time_s = 0.2
min_samples = 5
"""
N_CELLS = 18  # 3 seeds x 3 methods x (latency + size)


def _check(db) -> int:
    """Integrity and no duplicates; returns the number of cells recorded."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=30)  # read-write: rolls back the killed driver's hot journal
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = conn.execute("SELECT run_id, cell_key FROM cells").fetchall()
        assert len(keys) == len(set(keys)), "a cell recorded twice"
        orphans = conn.execute("SELECT count(*) FROM measurements WHERE cell_id NOT IN (SELECT id FROM cells)")
        assert orphans.fetchone()[0] == 0
        return len(keys)
    finally:
        conn.close()


def _recorded(db) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            return conn.execute("SELECT count(*) FROM cells").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def kill_loop(suite, db, tmp_path, kills: int, seed: int) -> list[tuple]:
    """Start the driver, kill it at a seeded random moment, check, ``kills`` times; then let it finish."""
    rng = random.Random(seed)
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "-q"]
    log = []
    for i in range(kills):
        # A seeded moment spread over the run: after 0-1 more cells are recorded, plus 0-1.5 s (so
        # kills land in start-up, in a worker, in the middle of recording and between cells).
        more, extra, group = rng.randint(0, 1), rng.uniform(0.0, 1.5), rng.random() < 0.5
        start = _check(db)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)  # its own group: killing it spares pytest
        deadline = time.monotonic() + 300
        while _recorded(db) < start + more and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(extra)
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read()
            log.append((i, more, round(extra, 2), "group" if group else "driver", "finished first"))
            break
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not group:  # its workers are orphans now; let them end before the next driver starts
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.append((i, more, round(extra, 2), "group" if group else "driver", _check(db)))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert _check(db) == N_CELLS
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*), min(status) FROM runs").fetchone() == (1, "complete")
        assert conn.execute("SELECT count(DISTINCT cell_key) FROM cells WHERE status = 'ok'").fetchone()[0] \
            == N_CELLS
    finally:
        conn.close()
    return log


def test_random_kills_fast(suite_file, tmp_path):
    kill_loop(suite_file(SUITE), tmp_path / "k.db", tmp_path, kills=2, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 7])
def test_random_kills_loop(suite_file, tmp_path, seed):
    log = kill_loop(suite_file(SUITE), tmp_path / "k.db", tmp_path, kills=12, seed=seed)
    print("\n".join(map(str, log)))
