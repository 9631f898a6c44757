"""Corrupt, foreign and future databases against every command; hot journals; merge through SQLite.

Each damaged file is made for real (:mod:`dbfaults`). Every command that opens a database, reader
or writer, must exit 2 with the path and the reason (no traceback), and leave the file as it was.
"""

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from dbfaults import VARIANTS, good, hot_journal, make

from harness.cli import cli
from harness.store.check import BadDatabase, check_store
from harness.store.db import Store, migration_names, open_readonly
from harness.store.merge import merge

SUITE = """
name = "never-runs"
seeds = [0]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 32 }]
methods = ["dense"]
backends = ["onnxruntime-cpu"]
suites = ["size"]
"""

COMMANDS = {
    "leaderboard": lambda d, t: ["leaderboard", "--db", d],
    "runs": lambda d, t: ["runs", "--db", d],
    "results": lambda d, t: ["results", "--db", d],
    "report": lambda d, t: ["report", "--db", d, "-o", t / "report.html"],
    "compare": lambda d, t: ["compare", "1", "2", "--db", d],
    "history": lambda d, t: ["history", "--metric", "top1", "--db", d],
    "sql": lambda d, t: ["sql", "SELECT count(*) FROM runs", "--db", d],
    "serve": lambda d, t: ["serve", "--db", d, "--port", "1"],
    "run": lambda d, t: ["run", t / "suite.toml", "--db", d, "-q"],
    "merge-source": lambda d, t: ["merge", d, "-o", t / "merged.db"],
    "merge-output": lambda d, t: ["merge", good(t / "good.db"), "-o", d],
}
#: A zero-byte file is a new, empty database to a writer (what mkstemp or touch leave): run and
#: merge's output make a store of it; every reader refuses it.
WRITES_A_NEW_STORE = {("zero", "run"), ("zero", "merge-output")}
MATRIX = [(v, c) for v in VARIANTS for c in COMMANDS if (v, c) not in WRITES_A_NEW_STORE]


def invoke(args):
    return CliRunner().invoke(cli, [str(a) for a in args], obj={})


@pytest.mark.parametrize(("variant", "command"), MATRIX)
def test_every_command_refuses_a_bad_database_naming_it(tmp_path, variant, command):
    (tmp_path / "suite.toml").write_text(SUITE)
    db = make(variant, tmp_path / f"{variant}.db")
    before = db.read_bytes()
    result = invoke(COMMANDS[command](db, tmp_path))
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    text = result.stderr
    assert f"database {db}" in text and "Traceback" not in text, text
    assert db.read_bytes() == before  # a writer never touched it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(db.name)) == [db.name]


@pytest.mark.parametrize(("variant", "reason"), [
    ("truncated", "is truncated"), ("random", "is not an SQLite database (it starts with binary data"),
    ("text", "is not an SQLite database (it starts with text"), ("zero", "is empty (0 bytes)"),
    ("page-corrupt", "is damaged"), ("foreign", "not a harness leaderboard (no harness migrations"),
    ("future", "newer harness: it has migrations harness 0.1.0 does not know (m999_from_a_newer_harness)"),
])
def test_the_reason_says_what_is_wrong(tmp_path, variant, reason):
    db = make(variant, tmp_path / "x.db")
    with pytest.raises(BadDatabase, match=reason.replace("(", r"\(").replace(")", r"\)")):
        open_readonly(db)


def test_a_future_schema_names_the_versions_that_wrote_it(tmp_path):
    db = make("future", tmp_path / "x.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET harness_version = '0.9.0'")
    conn.commit()
    conn.close()
    with pytest.raises(BadDatabase, match="its runs were made by harness 0.9.0"):
        Store(db)


def test_a_zero_byte_file_becomes_a_store_for_a_writer(tmp_path):
    db = make("zero", tmp_path / "x.db")
    assert check_store(db, known=migration_names(), writing=True) == "new"
    Store(db).close()
    assert check_store(db, known=migration_names()) == "store"
    report = merge([good(tmp_path / "good.db")], make("zero", tmp_path / "out.db"))
    assert report.runs_added == 2


def test_readers_recover_a_hot_journal(tmp_path, harness_cli):
    """A writer killed mid-transaction: readers roll the journal back and see the committed data."""
    reference = good(tmp_path / "reference.db")
    expected = sqlite3.connect(reference).execute("SELECT count(*) FROM measurements").fetchone()[0]
    db = hot_journal(tmp_path / "hot.db")
    out = harness_cli("sql", "SELECT count(*) AS n FROM measurements", "--db", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert f'"n":{expected}' in out.stdout.replace(" ", "")
    assert not Path(f"{db}-journal").exists()


def test_a_hot_journal_a_reader_cannot_roll_back_is_explained(tmp_path, monkeypatch):
    db = hot_journal(tmp_path / "hot.db")
    monkeypatch.setattr("harness.store.check.os.access", lambda path, mode: False)  # as a reader without write
    with pytest.raises(BadDatabase, match="hot rollback journal .*needs write access"):
        open_readonly(db)
    assert Path(f"{db}-journal").exists()  # nothing touched


def test_merge_reads_a_source_through_sqlite_honouring_its_journal(tmp_path):
    """A source with a hot journal merges its committed contents, not the half-written file."""
    reference = good(tmp_path / "reference.db")
    expected = sqlite3.connect(reference).execute("SELECT count(*) FROM measurements").fetchone()[0]
    src = hot_journal(tmp_path / "hot.db")
    report = merge([src], tmp_path / "out.db")
    assert report.measurements_added == expected
    out = sqlite3.connect(tmp_path / "out.db")
    assert out.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_merging_a_partial_copy_then_the_full_one_ends_with_the_final_status(tmp_path):
    full = good(tmp_path / "full.db")
    partial = tmp_path / "partial.db"
    src = sqlite3.connect(full)
    dst = sqlite3.connect(partial)
    src.backup(dst)
    src.close()
    # The partial copy was taken while the runs were going: running, and half of their cells.
    dst.execute("UPDATE runs SET status = 'running', finished_at = NULL")
    dst.execute("DELETE FROM measurements WHERE cell_id > (SELECT max(id) / 2 FROM cells)")
    dst.execute("DELETE FROM sample_sets WHERE cell_id > (SELECT max(id) / 2 FROM cells)")
    dst.execute("DELETE FROM cells WHERE id > (SELECT max(id) / 2 FROM cells)")
    dst.commit()
    dst.close()
    out = tmp_path / "out.db"
    merge([partial], out)
    merge([full], out)
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT DISTINCT status FROM runs").fetchall() == [("complete",)]
    assert conn.execute("SELECT count(*) FROM cells").fetchone()[0] == \
        sqlite3.connect(full).execute("SELECT count(*) FROM cells").fetchone()[0]
    merge([partial], out)  # and a stale copy merged later does not take it back
    assert conn.execute("SELECT DISTINCT status FROM runs").fetchall() == [("complete",)]


def test_a_folder_is_not_a_database(tmp_path):
    result = invoke(["runs", "--db", tmp_path])
    assert result.exit_code == 2 and "is not a file" in result.stderr


def test_writers_opening_one_new_database_together_all_succeed(tmp_path):
    """Four processes open one new database at once: one applies the migrations, the others wait."""
    import subprocess
    import sys

    for attempt in range(5):
        db = tmp_path / f"new{attempt}.db"
        code = "import sys; from harness.store.db import Store; Store(sys.argv[1]).close()"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        errors = [p.communicate()[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        assert check_store(db, known=migration_names()) == "store"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"new{i}.db" for i in range(5)]  # no lock left


def test_readers_know_the_writers_migrations_without_importing_sqlite_utils():
    """Readers check a store against ``check.MIGRATIONS`` (so reading never imports sqlite-utils and pandas);
    it must name every migration the writer registers, in order."""
    import subprocess
    import sys

    from harness.store import check

    assert list(check.MIGRATIONS) == migration_names()
    probe = ("import sys; from harness.store.check import open_readonly; import harness.query.leaderboard; "
             "print(sorted(m for m in ('sqlite_utils', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
