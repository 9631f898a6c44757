"""``harness sql`` and every reading connection: reads only, no file opened or created, a time limit, Ctrl-C."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from harness.store.db import Store, open_readonly
from harness.store.guard import QueryRefused, QueryTimeout

RUNAWAY = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r"


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "l.db"
    Store(path).close()
    return path


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("statement", [
    "ATTACH DATABASE 'x.db' AS x",
    "ATTACH DATABASE 'file:x.db?mode=rwc' AS x",
    "ATTACH 'file:x.db?mode=rwc' AS x",
    "VACUUM INTO 'x.db'",
    "VACUUM",
    "DETACH DATABASE temp",
    "PRAGMA journal_mode = WAL",
    "PRAGMA main.user_version = 7",
    "PRAGMA query_only = OFF",
    "PRAGMA writable_schema = ON",
    "INSERT INTO metrics (name) VALUES ('x')",
    "CREATE TABLE x (a)",
    "CREATE TEMP TABLE x (a)",
    "DROP VIEW results",
    "SELECT load_extension('x')",
])
def test_sql_refuses_what_writes_or_opens_another_file_and_creates_nothing(harness_cli, db, statement):
    folder = db.parent
    before, content = _files(folder), db.read_bytes()
    out = harness_cli("sql", statement, "--db", db, cwd=folder)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "refused" in out.stderr and "Traceback" not in out.stderr
    assert _files(folder) == before  # no x.db, no journal left behind
    assert db.read_bytes() == content


def test_refusal_names_what_was_refused(db):
    with pytest.raises(QueryRefused, match="ATTACH x.db"):
        from harness.query.sql import run_sql

        run_sql(db, "ATTACH DATABASE 'x.db' AS x")


@pytest.mark.parametrize("statement", [
    "SELECT count(*) FROM runs",
    "PRAGMA table_info(runs)",
    "SELECT name FROM pragma_table_info('cells')",
    "PRAGMA quick_check",
    "PRAGMA page_size",
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 10) SELECT sum(i) FROM r",
])
def test_reads_and_read_pragmas_still_work(db, statement):
    from harness.query.sql import run_sql

    frame = run_sql(db, statement)
    assert len(frame) >= 1


def test_every_reading_connection_has_the_authorizer(db, tmp_path):
    """Not only harness sql: the connection every reader gets refuses ATTACH, and temp scratch tables work."""
    conn = open_readonly(db)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            conn.execute("ATTACH DATABASE ? AS x", [str(tmp_path / "x.db")])
        conn.execute("CREATE TEMP TABLE scratch (a)")
        conn.execute("INSERT INTO temp.scratch VALUES (1)")
        assert conn.execute("SELECT a FROM temp.scratch").fetchall()[0][0] == 1
    finally:
        conn.close()
    assert not (tmp_path / "x.db").exists()


def test_a_runaway_query_stops_at_its_time_limit(db):
    from harness.query.sql import run_sql

    with pytest.raises(QueryTimeout, match="time limit of 0.5 s"):
        run_sql(db, RUNAWAY, timeout_s=0.5)


def test_the_time_limit_covers_fetching_rows_too(db):
    """The first row comes at once, the rest never end: fetching is under the same limit."""
    conn = open_readonly(db, timeout_s=0.5)
    try:
        cursor = conn.execute("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT i FROM r")
        with pytest.raises(QueryTimeout):
            cursor.fetchall()
    finally:
        conn.close()


def test_the_time_limit_comes_from_the_environment(harness_cli, db):
    out = harness_cli("sql", RUNAWAY, "--db", db, env={"HARNESS_QUERY_TIMEOUT_S": "0.5"}, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "time limit of 0.5 s" in out.stderr and "Traceback" not in out.stderr


def _wait_until_open(pid, path, limit_s=120):
    """Until process ``pid`` holds ``path`` open (its connection), read from /proc."""
    fds = f"/proc/{pid}/fd"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if any(os.path.realpath(os.path.join(fds, fd)) == str(path.resolve()) for fd in os.listdir(fds)):
                return
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never opened {path}")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="watches the child's open files in /proc")
def test_ctrl_c_stops_a_running_query_with_a_message(db, tmp_path):
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"))
    # As from a terminal: SIGINT at its default, whatever this test process inherited (a child started with
    # SIGINT ignored, as under nohup, rightly keeps ignoring Ctrl-C; something in the test run leaves it so).
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sql", RUNAWAY, "--db", str(db), "--timeout", "0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_until_open(proc.pid, db)  # start-up done: the query runs
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
