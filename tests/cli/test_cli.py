"""The command line's one error mapping (harness.cli.HarnessGroup), through the real CLI.

A usage error raised anywhere below a command is ``Error: <message>`` on standard error and exit
status 2, with no traceback; a failed step is exit status 1 with its message; anything else is a
bug and keeps its traceback (a ``KeyError`` is no longer taken for a usage error).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from click.testing import CliRunner

from harness.cli import cli
from harness.core.errors import StepFailed, UsageError
from harness.store.db import Store


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), obj={})


def test_a_usage_error_from_the_query_layer_is_exit_2_with_its_message_only(tmp_path):
    db = tmp_path / "board.db"
    Store(db).close()  # an empty leaderboard: no metric columns at all
    result = invoke("leaderboard", "--db", str(db), "--columns", "nosuch")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: no column 'nosuch' in the leaderboard"), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_a_usage_error_raised_deep_inside_keeps_its_text_and_is_not_a_traceback(monkeypatch):
    import harness.query.leaderboard as board

    def deep(db):
        raise UsageError("the file at fault, and what to change", file=str(db))

    monkeypatch.setattr(board, "runs", deep)
    result = invoke("runs", "--db", "somewhere.db")
    assert result.exit_code == 2
    assert result.stderr == "Error: the file at fault, and what to change\n"
    assert not isinstance(result.exception, UsageError)  # handled: click exited with the status


def test_a_suite_file_error_is_shown_under_its_heading(tmp_path):
    result = invoke("run", str(tmp_path / "missing.toml"), "--db", str(tmp_path / "x.db"), "-q")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: invalid suite file\n"), result.stderr
    assert "missing.toml: cannot read the suite file" in result.stderr


def test_a_missing_database_is_a_usage_error_naming_it(tmp_path):
    result = invoke("runs", "--db", str(tmp_path / "none.db"))
    assert result.exit_code == 2
    assert f"Error: no leaderboard database at {tmp_path / 'none.db'}" in result.stderr


def test_a_failed_step_is_exit_1_with_its_message(monkeypatch):
    import harness.query.sql as sql

    def failing(db, query, **options):
        raise StepFailed("setup of x failed: no network")

    monkeypatch.setattr(sql, "run_sql", failing)
    result = invoke("sql", "SELECT 1", "--db", "x.db")
    assert result.exit_code == 1
    assert result.stderr == "Error: setup of x failed: no network\n"


def test_an_unexpected_exception_keeps_its_traceback_and_a_nonzero_status(tmp_path):
    # A KeyError is a bug, not a usage error: the real CLI, with a query that has one.
    code = textwrap.dedent("""
        import sys
        import harness.query.leaderboard as board
        board.runs = lambda db: {}["a-bug"]
        from harness.cli import main
        sys.argv = ["harness", "runs", "--db", "x.db"]
        main()
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode not in (0, 2), proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert "KeyError: 'a-bug'" in proc.stderr
    assert not any(line.startswith("Error: ") for line in proc.stderr.splitlines())  # not dressed as a usage error


def test_python_dash_m_and_the_console_entry_point_share_the_mapping(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "sql", "SELECT 1", "--db", str(tmp_path / "no.db")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: no leaderboard database at ")
    assert "Traceback" not in proc.stderr
