"""One driver per run: real `harness run` processes on one database (lock, take-over, SIGTERM)."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store.lock import RunLock, RunLocked, lock_path

SUITE = """
name = "{name}"
seeds = [0]

[[matrix]]
models = ["mlp"]
datasets = [{{ name = "synthetic", n = 32 }}]
methods = [{{ name = "dense" }}, {{ name = "random", sparsity = [0.3, 0.6] }}]
backends = ["onnxruntime-cpu"]
suites = ["latency", "size"]

[settings.latency]
profile = "smoke"
min_time_s = 0.3
min_samples = 5
"""
N_CELLS = 6  # 3 methods x (latency + size)


def _start(suite, db, tmp_path):
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(db, sql):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _recorded(db) -> int:
    try:
        return _rows(db, "SELECT count(*) FROM cells")[0][0]
    except sqlite3.Error:
        return 0


def _wait(pred, proc, limit_s=300):
    deadline = time.monotonic() + limit_s
    while not pred():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _assert_exactly_once(db, runs=1):
    keys = _rows(db, "SELECT run_id, cell_key FROM cells")
    assert len(keys) == len(set(keys)) == N_CELLS * runs
    assert len(_rows(db, "SELECT id FROM runs")) == runs
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.fixture
def suite(suite_file):
    return suite_file(SUITE.format(name="lock"))


def test_a_second_driver_of_the_same_run_refuses_and_names_the_first(suite, tmp_path):
    db = tmp_path / "l.db"
    first = _start(suite, db, tmp_path)
    try:
        _wait(lambda: _recorded(db) >= 1, first)
        second = _start(suite, db, tmp_path)
        out, err = second.communicate(timeout=300)
        assert second.returncode == 2, err
        assert f"pid {first.pid} on host {socket.gethostname()}" in err and "Traceback" not in err
        assert first.wait(timeout=600) == 0, first.communicate()
    finally:
        first.kill() if first.poll() is None else None
    _assert_exactly_once(db)
    assert not lock_path(db, _rows(db, "SELECT suite_sha256 FROM runs")[0][0], None).exists()  # released


def test_two_drivers_started_together_make_one_run(suite, tmp_path):
    db = tmp_path / "l.db"
    procs = [_start(suite, db, tmp_path) for _ in range(2)]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    # One measures; the other refuses while the first holds the run (or, when it came after the
    # first finished, resumes a complete run and measures nothing). Never two runs.
    assert codes in ([0, 2], [0, 0]), results
    assert all("Traceback" not in err for _, err in results)
    _assert_exactly_once(db)


def test_different_suites_on_one_database_run_side_by_side(suite_file, tmp_path):
    db = tmp_path / "l.db"
    a, b = suite_file(SUITE.format(name="a"), "a.toml"), suite_file(SUITE.format(name="b"), "b.toml")
    procs = [_start(a, db, tmp_path), _start(b, db, tmp_path)]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    _assert_exactly_once(db, runs=2)


def test_the_lock_of_a_killed_driver_is_taken_over(suite, tmp_path):
    db = tmp_path / "l.db"
    first = _start(suite, db, tmp_path)
    _wait(lambda: _recorded(db) >= 1, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    locks = list(tmp_path.glob("l.db.run-*.lock"))
    assert len(locks) == 1 and json.loads(locks[0].read_text())["pid"] == first.pid  # left behind
    second = _start(suite, db, tmp_path)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert f"took over the run from a driver that stopped without releasing it (pid {first.pid}" in err
    _assert_exactly_once(db)
    assert _rows(db, "SELECT status FROM runs") == [("complete",)]


def test_sigterm_leaves_the_run_interrupted_and_it_resumes(suite, tmp_path):
    db = tmp_path / "l.db"
    first = _start(suite, db, tmp_path)
    _wait(lambda: _recorded(db) >= 1, first)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert _rows(db, "SELECT status FROM runs") == [("interrupted",)]
    assert not list(tmp_path.glob("l.db.run-*.lock"))
    again = _start(suite, db, tmp_path)
    assert again.wait(timeout=600) == 0, again.communicate()
    _assert_exactly_once(db)
    assert _rows(db, "SELECT status FROM runs") == [("complete",)]


def test_a_held_lock_refuses_in_process_and_frees_on_release(tmp_path):
    db = tmp_path / "l.db"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from harness.store.lock import RunLock\n"
        f"lock = RunLock({str(db)!r}, 'abc', None).acquire(); print('held', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"pid {holder.pid} on host"):
            RunLock(db, "abc", None).acquire()
        with RunLock(db, "abc", "nightly"):  # another tag is another run
            pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with RunLock(db, "abc", None) as lock:  # the holder exited: the lock is free
        assert Path(lock.path).exists()
    assert not Path(lock.path).exists()
