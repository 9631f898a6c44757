"""Faulty plugins: exceptions that cannot be printed, processes left behind, floods of output, data the
store cannot take. Each cell fails (or is kept) with a clear reason; nothing else is lost.

The suites are real plugins (tests/fixtures/faulty_suites) run by real worker processes: through
:class:`harness.run.local.LocalExecutor` here, through the CLI where the driver's output matters.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from harness.core.errors import REASON_CHARS, describe_exception, exception_text, format_traceback
from harness.devkit import toy
from harness.run.isolation import OutputTail
from harness.run.local import LocalExecutor
from harness.run.measured import plain
from harness.run.task import CellTask

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "faulty_suites"


class _BadStr(Exception):
    def __str__(self):
        raise ValueError("no")

    def __repr__(self):
        raise ValueError("no")


def test_an_exception_that_cannot_be_printed_is_described_by_its_type():
    exc = _BadStr()
    assert exception_text(exc) == "(str() of the exception raised ValueError)"
    assert describe_exception(exc) == "_BadStr: (str() of the exception raised ValueError)"
    assert "_BadStr" in format_traceback(exc)
    long = describe_exception(RuntimeError("m" * 10_000_000))
    assert len(long) < REASON_CHARS + 100 and long.endswith("more characters)")


def test_what_a_plugin_returns_becomes_plain_finite_json():
    cyclic: dict = {}
    cyclic["me"] = cyclic
    out = plain({"nan": float("nan"), 1: (2, float("inf")), "x": _BadStr(), "fn": len, "cyclic": cyclic})
    text = json.dumps(out, allow_nan=False)  # raises on NaN/inf: none left
    assert out["nan"] is None and out["1"] == [2, None]
    assert out["x"] == "<_BadStr object: str() raised ValueError>"
    assert "nested too deep" in text


def test_an_output_tail_keeps_the_last_bytes_and_counts_all():
    tail = OutputTail(limit=8)
    for chunk in (b"hello ", b"world\n", b"bye\n"):
        tail.feed(chunk)
    assert tail.as_info() == {"bytes": 16, "tail": "rld\nbye\n", "truncated": True}
    assert tail.last_line() == "bye"


# ---------------------------------------------------------------------- real worker processes


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faulty-cache")


@pytest.fixture
def executor():
    ex = LocalExecutor({}, timeout_s=120)
    yield ex
    ex.close()


def _task(mode: str, cache: Path, marker: Path | str = "", timeout_s: float = 300.0) -> CellTask:
    cell = {"model": {"name": toy.MODEL, "params": {}}, "dataset": {"name": toy.DATASET, "params": {}},
            "method": {"name": "dense", "params": {}}, "seed": 0, "backend": None, "verifier": None,
            "benchmark": False}
    return CellTask(cell_key=mode, suite=f"faulty-{mode}", cell=cell, identity={"suite": f"faulty-{mode}"},
                    artifact_group="g", settings={"marker": str(marker)}, cache_dir=str(cache),
                    plugins_dir=str(FIXTURE), timeout_s=timeout_s)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _gone(pids: list[int], within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _pids(marker: Path) -> list[int]:
    pids = [int(p) for p in marker.read_text().split()]
    assert len(pids) == 2
    return pids


def test_an_exception_whose_str_raises_fails_only_its_cell(executor, shared_cache):
    assert executor.run_one(_task("ok-first", shared_cache)).status == "ok"  # builds the toy artifact
    for mode, name in (("bad-str", "BadStr"), ("bad-str-repr", "BadStrRepr")):
        result = executor.run_one(_task(mode, shared_cache))
        assert result.status == "failed" and result.error_type == name
        assert result.reason == f"suite: {name}: (str() of the exception raised ValueError)"
        assert "Traceback" in result.traceback
    skipped = executor.run_one(_task("bad-str-skip", shared_cache))
    assert skipped.status == "skipped" and skipped.reason == "(str() of the exception raised RuntimeError)"
    assert executor.run_one(_task("ok-first", shared_cache)).status == "ok"  # the executor carries on


def test_processes_a_timed_out_cell_started_are_killed_with_it(executor, shared_cache, tmp_path):
    marker = tmp_path / "pids"
    result = executor.run_one(_task("spawn-hang", shared_cache, marker, timeout_s=40.0))
    assert result.status == "failed" and result.error_type == "Timeout", result.reason
    # A plain grandchild and a daemon that left for a session of its own: both gone.
    assert _gone(_pids(marker))


def test_processes_an_ok_cell_left_behind_end_with_the_executor(shared_cache, tmp_path):
    marker = tmp_path / "pids"
    ex = LocalExecutor({}, timeout_s=120)
    try:
        assert ex.run_one(_task("spawn-return", shared_cache, marker)).status == "ok"
        pids = _pids(marker)
        assert all(_alive(p) for p in pids)  # the worker serves the next cell with its pools and helpers
    finally:
        ex.close()
    assert _gone(pids)


SUITE = """
name = "faulty"
[[matrix]]
models = ["toy-cnn"]
datasets = ["toy-blobs"]
methods = ["dense"]
suites = ["faulty-ok-first", "faulty-flood", "faulty-nan", "faulty-unprintable-info", "faulty-unpicklable-info",
          "faulty-huge-message", "faulty-exit0", "faulty-string-value", "faulty-non-string-metric",
          "faulty-chdir", "faulty-close-stdout", "faulty-recursion", "faulty-last-words"]
"""


def test_a_run_of_faulty_suites_records_every_cell_and_keeps_the_driver_output_small(harness_cli, suite_file,
                                                                                     tmp_path):
    db = tmp_path / "f.db"
    proc = harness_cli("--plugins-dir", FIXTURE, "run", suite_file(SUITE), "--db", db, "--no-leaderboard")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    # 20 MB printed to stdout and 20 MB to stderr stayed in the cell: the driver's output is its own.
    assert len(proc.stdout) < 4096 and len(proc.stderr) < 16384, out[-3000:]
    assert "Traceback" not in out
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    cells = {r["suite"].removeprefix("faulty-"): dict(r) for r in conn.execute("SELECT * FROM cells")}
    assert len(cells) == 13
    status = {k: c["status"] for k, c in cells.items()}
    assert status == {"ok-first": "ok", "flood": "ok", "nan": "ok", "unprintable-info": "ok",
                      "unpicklable-info": "ok", "huge-message": "failed", "exit0": "failed",
                      "string-value": "failed", "non-string-metric": "failed", "chdir": "ok",
                      "close-stdout": "ok", "recursion": "failed", "last-words": "failed"}
    output = json.loads(cells["flood"]["info"])["output"]
    assert output["stdout"]["bytes"] >= 20 * 2**20 and output["stdout"]["truncated"]
    assert len(output["stdout"]["tail"]) <= 4096
    assert output["stdout"]["tail"].endswith("from-a-child-process\n")  # a child process's output, caught too
    assert output["stderr"]["tail"].endswith("last-words-on-stderr\n")
    assert len(cells["huge-message"]["reason"]) < REASON_CHARS + 100
    assert "exited with status 0" in cells["exit0"]["reason"]
    assert "must be a number" in cells["string-value"]["reason"]
    assert "metric of a measurement must be a non-empty string" in cells["non-string-metric"]["reason"]
    assert "RecursionError" in cells["recursion"]["reason"]
    # A hard crash: what it printed before dying, and the Python stack faulthandler wrote, are kept.
    assert "SIGABRT" in cells["last-words"]["reason"] and "last line on its stderr" in cells["last-words"]["reason"]
    words = json.loads(cells["last-words"]["info"])["output"]["stderr"]["tail"]
    assert "last words before dying" in words and "Fatal Python error: Aborted" in words
    # A NaN is stored as NULL and flagged; JSON columns stay valid for SQLite's JSON functions.
    nan = {r["metric"]: dict(r) for r in conn.execute(
        "SELECT metric, value, flag, json_extract(info, '$.loss') AS loss, json_extract(stats, '$.cv') AS cv, "
        "json_extract(info, '$.non_finite_samples_dropped') AS dropped FROM measurements WHERE cell_id = ?",
        [cells["nan"]["id"]])}
    assert nan["answer"]["value"] is None and "non-finite" in nan["answer"]["flag"]
    assert nan["answer"]["loss"] is None and nan["answer"]["cv"] is None and nan["answer"]["dropped"] == 1
    assert nan["other"]["value"] == 1.0
    samples = conn.execute("SELECT samples FROM sample_sets WHERE cell_id = ?", [cells["nan"]["id"]]).fetchone()[0]
    assert json.loads(samples) == [1.0, 2.0]
    info = conn.execute("SELECT json_extract(m.info, '$.x'), json_extract(m.info, '$.fn') FROM measurements m "
                        "JOIN cells c ON c.id = m.cell_id WHERE c.suite IN ('faulty-unprintable-info', "
                        "'faulty-unpicklable-info') AND m.metric = 'answer' ORDER BY c.suite").fetchall()
    assert info[0][1].startswith("<function") and info[1][0] == "<Unprintable object: str() raised RuntimeError>"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="process checks read /proc")
def test_the_driver_is_never_in_a_cells_process_group(executor, shared_cache):
    assert executor.run_one(_task("ok-first", shared_cache)).status == "ok"
    worker = executor._proc.pid
    assert os.getpgid(worker) == worker != os.getpgid(0)  # the worker leads a session of its own
