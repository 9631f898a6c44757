"""The pandas-free board (:mod:`harness.query.board`) against the store's own ``latest_cells`` view, and the
command line's reads without pandas."""

from __future__ import annotations

import subprocess
import sys

from synthetic import MACHINE_A, MACHINE_B, accuracy, identity, new_run, open_store, record

from harness.query.board import fetch_latest
from harness.query.leaderboard import board, leaderboard
from harness.store.check import open_readonly


def _store(tmp_path):
    """Reruns on two machines, a failed newer cell, a cell whose finish time is older than its id says (as a
    merge of another store writes), one with no finish time, and ties."""
    store = open_store(tmp_path / "lb.db")
    plan = [(MACHINE_A, 0.90), (MACHINE_B, 0.80), (MACHINE_A, 0.91), (MACHINE_B, 0.81), (MACHINE_A, 0.92)]
    for i, (machine, top1) in enumerate(plan):
        run = new_run(store, machine=machine)
        for method in ("dense", "global-magnitude", "int8-dynamic"):
            ident = identity(method, {} if method == "dense" else {"sparsity": 0.5}, "onnxruntime-cpu", "accuracy")
            cid = record(store, run, ident, accuracy(top1 - 0.01 * (method != "dense"), 0.9),
                         status="failed" if (i == 4 and method == "int8-dynamic") else "ok")
            if i == 4 and method == "global-magnitude":  # finished before the earlier runs' cells
                store.db.execute("UPDATE cells SET finished_at = '2000-01-01T00:00:00+00:00' WHERE id = ?", [cid])
            if i == 3 and method == "dense":
                store.db.execute("UPDATE cells SET finished_at = NULL WHERE id = ?", [cid])
    store.db.conn.commit()
    store.close()
    return tmp_path / "lb.db"


def test_the_boards_latest_cells_are_the_views(tmp_path):
    path = _store(tmp_path)
    conn = open_readonly(path)
    try:
        for machine in (MACHINE_A["hash"], MACHINE_B["hash"]):
            view = {r[0] for r in conn.execute(
                "SELECT id FROM latest_cells WHERE machine_hash = ?", [machine]).fetchall()}
            cells, measurements, _ = fetch_latest(conn, machine, [], [])
            assert set(cells) == view and len(view) == 3
            assert {m[0] for m in measurements} == view
        filtered, _, _ = fetch_latest(conn, MACHINE_A["hash"], ["c.method = ?"], ["dense"])
        assert len(filtered) == 1 and next(iter(filtered.values()))[5] == "dense"
        everything, _, _ = fetch_latest(conn, None, [], [])
        assert set(everything) == {r[0] for r in conn.execute("SELECT id FROM latest_cells").fetchall()}
    finally:
        conn.close()


def test_the_board_and_the_frame_hold_the_same_rows(tmp_path):
    path = _store(tmp_path)
    rows = board(path, machine="aaaa", sort="top1")
    frame = leaderboard(path, machine="aaaa", sort="top1")
    assert list(frame.columns) == rows.columns
    assert frame["method"].tolist() == [r["method"] for r in rows.rows]
    assert [r["rank"] for r in rows.rows] == [None if v != v else int(v) for v in frame["rank"].astype(float)]
    # the failed newest int8 cell leaves the one before in place; the last run's global-magnitude cell finished
    # "before" the earlier runs' (its finish time, not its id, decides), so the third run's is the latest
    top1 = {r["method"]: r["top1"] for r in rows.rows}
    assert top1 == {"dense": 0.92, "global-magnitude": 0.91 - 0.01, "int8-dynamic": 0.91 - 0.01}


def test_leaderboard_commands_read_without_pandas(tmp_path):
    path = _store(tmp_path)
    probe = ("import sys; from harness.cli import main; sys.argv = ['harness', 'leaderboard', '--db', sys.argv[1], "
             "'--pareto', 'top1:max,top1_delta:max', '--format', 'json']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('pandas', 'sqlite_utils', 'scipy') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert '"method"' in done.stdout


def _mixed_store(tmp_path):
    """Shared size rows, two backends, a quality gate, unchecked figures at another batch size, a size figure
    without its claims check and a measurement without a value."""
    from synthetic import latency, size

    store = open_store(tmp_path / "mixed.db")
    run = new_run(store)
    for i, (method, top1, ms) in enumerate((("dense", 0.98, 1.0), ("global-magnitude", 0.90, 0.6),
                                            ("int8-dynamic", 0.975, 0.5), ("old", 0.97, 0.4))):
        params = {} if method == "dense" else {"sparsity": 0.5}
        sz = size(1000.0 - 100 * i, 0.1 * i)
        if method == "old":
            sz = [m for m in sz if m["metric"] != "check_claims"] + [{"metric": "onnx_bytes", "value": None,
                                                                     "unit": "bytes"}]
        record(store, run, identity(method, params, None, "size"), sz)
        for backend in ("onnxruntime-cpu", "torch-cpu"):
            record(store, run, identity(method, params, backend, "accuracy"), accuracy(top1, 0.98))
            b32 = latency(ms * 8, batch=32, seed=i)
            if method == "int8-dynamic":  # its batch-32 timing was never checked
                b32 = [m for m in b32 if m["metric"] != "check_test01"]
            record(store, run, identity(method, params, backend, "latency"), latency(ms, seed=i) + b32)
    store.close()
    return tmp_path / "mixed.db"


def test_a_board_read_for_some_metrics_has_the_whole_boards_rows_flags_and_ranks(tmp_path):
    """The command line reads only the columns it shows (``metrics``); the rows, flags (unchecked notes of
    columns not read included) and ranks must be those of the whole board."""
    from harness.query.leaderboard import metrics_shown

    path = _mixed_store(tmp_path)
    for sort, shown in (("top1", None), ("p50_ms", "gzip_bytes"), ("gzip_bytes", "top1,p50_ms")):
        whole = board(path, sort=sort)
        part = board(path, sort=sort, metrics=metrics_shown(shown, sort=sort))
        keep = [c for c in part.columns if c in whole.columns]
        assert set(part.columns) <= set(whole.columns) and len(part.columns) < len(whole.columns)
        assert [[r[c] for c in keep] for r in part.rows] == [[r[c] for c in keep] for r in whole.rows]
    flags = {r["method"]: r["flags"] for r in board(path, metrics={"top1"}).rows}
    assert "unchecked: test01@b32 has no result (needed by p50_ms@b32)" in flags["int8-dynamic"]
    assert "quality gate" in flags["global-magnitude"] and flags["dense"] is None


def test_a_value_that_is_no_number_is_a_clear_error_and_infinity_is_valid_json(tmp_path, harness_cli):
    """SQLite keeps any type in any column: a store changed by hand (or by anything but harness) may hold text
    where a figure belongs. The leaderboard names the file, the cell and the metric (exit 2, no traceback); an
    infinite figure prints as null in JSON, which has no infinity."""
    import json
    import sqlite3

    path = _mixed_store(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE measurements SET value = 1e400 WHERE metric = 'p50_ms'")
    conn.commit()
    out = harness_cli("leaderboard", "--db", path, "--format", "json")
    assert out.returncode == 0 and {r["p50_ms@b1"] for r in json.loads(out.stdout)} == {None}
    conn.execute("UPDATE measurements SET value = 'abc' WHERE id = (SELECT min(id) FROM measurements "
                 "WHERE metric = 'top1')")
    conn.commit()
    conn.close()
    for args in (["--sort", "top1"], ["--pareto", "top1:max,p50_ms:min"], ["--format", "json"]):
        bad = harness_cli("leaderboard", "--db", path, *args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert str(path) in bad.stderr and "measurement 'top1' holds 'abc', which is no number" in bad.stderr


def test_compare_refuses_a_value_that_is_no_number(tmp_path, harness_cli):
    """SQLite's arithmetic reads text as 0, so a text "figure" would give compare a wrong change, not an error."""
    import sqlite3

    from synthetic import latency, new_run, open_store, record

    path = tmp_path / "c.db"
    store = open_store(path)
    for _ in range(2):
        record(store, new_run(store), identity("dense", {}, "onnxruntime-cpu", "latency"), latency(1.0))
    store.close()
    assert harness_cli("compare", "previous", "latest", "--db", path).returncode == 0
    conn = sqlite3.connect(path)
    conn.execute("UPDATE measurements SET value = 'fast' WHERE id = (SELECT max(id) FROM measurements "
                 "WHERE metric = 'p50_ms')")
    conn.commit()
    conn.close()
    bad = harness_cli("compare", "previous", "latest", "--db", path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert str(path) in bad.stderr and "measurement 'p50_ms' holds 'fast', which is no number" in bad.stderr


def test_identity_parameters_that_are_not_json_are_a_clear_error(tmp_path, harness_cli):
    import sqlite3

    path = _mixed_store(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE cells SET method_params = '{not json' WHERE id = (SELECT min(id) FROM cells)")
    conn.commit()
    conn.close()
    for args in ([], ["--format", "json"], ["--pareto", "top1:max,gzip_bytes:min"]):
        bad = harness_cli("leaderboard", "--db", path, *args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert "its parameters are not the JSON harness writes" in bad.stderr and str(path) in bad.stderr
