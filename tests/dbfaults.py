"""Broken leaderboard databases, made for real, for the fault-injection tests and bench/fault_matrix.py.

Every variant starts from a real store written by :class:`harness.store.db.Store` (two runs of the
synthetic leaderboard), then is damaged the way files are damaged in the wild: cut short, replaced
by random bytes, emptied, replaced by text, a page in the middle overwritten, a foreign SQLite file,
a schema from a newer harness, and a hot rollback journal from a writer killed mid-transaction.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from synthetic import board, new_run, open_store

ENTRIES = [("dense", {}, 0.96, 1.0, 1000.0)] + [
    ("global-magnitude", {"sparsity": i / 40}, 0.96 - i / 400, 1.0 - i / 50, 1000.0 - 20 * i) for i in range(1, 40)]
#: The variants :func:`make` builds; ``zero`` is empty (a new database for a writer).
VARIANTS = ("truncated", "random", "zero", "text", "page-corrupt", "foreign", "future")


def good(path: Path) -> Path:
    """A real, healthy leaderboard with two runs (big enough to have many pages)."""
    store = open_store(path)
    for night in range(2):
        board(store, new_run(store, tag="nightly"), ENTRIES, seed=night, backends=("onnxruntime-cpu",))
    store.close()
    return path


def make(variant: str, path: Path, seed: int = 0) -> Path:
    """Write the damaged database ``variant`` at ``path``; returns ``path``."""
    rng = random.Random(seed)
    if variant == "zero":
        path.write_bytes(b"")
    elif variant == "random":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(16384)))
    elif variant == "text":
        path.write_text("model,method,top1\nlenet5,dense,0.96\n" * 200)
    elif variant == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE contacts (name TEXT, email TEXT)")
        conn.execute("INSERT INTO contacts VALUES ('a', 'a@example.org')")
        conn.commit()
        conn.close()
    else:
        good(path)
        data = bytearray(path.read_bytes())
        page = int.from_bytes(data[16:18], "big")
        if variant == "truncated":
            path.write_bytes(bytes(data[: len(data) // 2]))
        elif variant == "page-corrupt":
            pages = len(data) // page
            for n in range(pages // 2, pages // 2 + 3):  # three pages in the middle, header untouched
                data[n * page:(n + 1) * page] = bytes(rng.randrange(256) for _ in range(page))
            path.write_bytes(bytes(data))
        elif variant == "future":
            conn = sqlite3.connect(path)
            conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                         "VALUES ('harness', 'm999_from_a_newer_harness', '2030-01-01')")
            conn.commit()
            conn.close()
        else:
            raise ValueError(variant)
    return path


def hot_journal(path: Path) -> Path:
    """A real hot rollback journal: a child process in a write transaction killed with SIGKILL.

    The child deletes every measurement (journal_mode=DELETE, a small cache so pages reach the
    file before commit) and is killed before it commits: the file holds half-written pages and
    ``PATH-journal`` the originals. Returns ``path``.
    """
    good(path)
    child = textwrap.dedent(f"""
        import os, signal, sqlite3
        conn = sqlite3.connect({str(path)!r}, isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA cache_size=1")  # spill dirty pages into the file before the commit
        conn.execute("BEGIN")
        conn.execute("DELETE FROM measurements")
        conn.execute("DELETE FROM sample_sets")
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "written" in proc.stdout, proc.stderr
    journal = Path(f"{path}-journal")
    assert journal.exists() and journal.stat().st_size > 0
    return path
