"""m006: the size suite's metric ``params`` is ``total_params`` (``params`` is also the measurements' JSON column)."""

import sqlite_utils

from harness.builtins.suites import size as size_suite
from harness.query.leaderboard import leaderboard
from harness.store.db import Store, migrations


def _old_store(path):
    """A store as versions before m006 wrote it: a size cell with ``params``, and another suite's ``params``."""
    db = sqlite_utils.Database(str(path))
    migrations.apply(db, stop_before="m006_total_params_metric")
    db["runs"].insert({"id": 1, "suite_name": "s", "suite_sha256": "x", "machine_hash": "m" * 64,
                       "started_at": "2026-01-01", "status": "complete"})
    for cid, suite in ((1, "size"), (2, "other")):
        db["cells"].insert({"id": cid, "run_id": 1, "cell_key": f"k{cid}", "model": "lenet5", "model_params": "{}",
                            "dataset": "digits", "dataset_params": "{}", "method": "dense", "method_params": "{}",
                            "seed": 0, "backend": None, "backend_params": "{}", "suite": suite, "status": "ok",
                            "finished_at": "2026-01-01"})
        db["measurements"].insert({"run_id": 1, "cell_id": cid, "metric": "params", "value": 61706.0,
                                   "unit": "count", "params": "{}", "stats": "{}", "info": "{}"})
    db["metrics"].insert({"name": "params", "suite": "size", "unit": "count", "higher_is_better": 0,
                          "description": "parameters of the artifact"})
    db.close()


def test_an_old_store_is_still_read_as_it_was_written(tmp_path):
    path = tmp_path / "old.db"
    _old_store(path)
    board = leaderboard(path, sort="params")  # no writer has opened it: read as it is
    assert board["params"].tolist() == [61706.0]


def test_a_writer_renames_the_size_metric_and_leaves_other_suites_alone(tmp_path):
    path = tmp_path / "old.db"
    _old_store(path)
    store = Store(path)
    store.register_metrics("size", size_suite.METRICS)  # as the driver does on every run
    rows = sorted(store.db.execute("SELECT c.suite, m.metric FROM measurements m JOIN cells c ON c.id = m.cell_id"))
    names = {r[0] for r in store.db.execute("SELECT name FROM metrics")}
    store.close()
    assert rows == [("other", "params"), ("size", "total_params")]
    assert "total_params" in names and "params" not in names
    board = leaderboard(path, sort="total_params")
    assert board["total_params"].tolist() == [61706.0]  # ("params" too: the other suite's own metric)


def test_the_size_suite_declares_no_metric_named_like_a_column():
    declared = {m.name for m in size_suite.METRICS}
    assert "total_params" in declared and "params" not in declared
