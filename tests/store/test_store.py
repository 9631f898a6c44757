"""The store: migrations, one transaction per cell, no duplicates, read-only access."""

import sqlite3

import pytest
import sqlite_utils

from harness.store.db import Store, migrations, open_readonly


def _cell(key="k1", status="ok"):
    return {"cell_key": key, "artifact_group": "g", "model": "m", "model_params": {}, "dataset": "d",
            "dataset_params": {}, "method": "dense", "method_params": {}, "seed": 0, "backend": "b",
            "backend_params": {"threads": 1}, "suite": "latency", "status": status}


def test_blank_database_gets_full_schema(memory_store):
    db = memory_store.db
    assert {"runs", "cells", "measurements", "sample_sets", "metrics"} <= set(db.table_names())
    assert {"results", "latest_cells", "latest_results"} <= set(db.view_names())
    names = [m.name for m in migrations.applied(db)]
    assert names == ["m001_runs_cells_measurements", "m002_result_views", "m003_run_tags",
                     "m004_measurement_flags", "m005_latest_per_machine_and_query_indexes",
                     "m006_total_params_metric"]
    assert "tag" in db["runs"].columns_dict and "flag" in db["measurements"].columns_dict


def test_old_database_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(str(path))
    migrations.apply(db, stop_before="m002_result_views")
    assert "results" not in db.view_names()
    db.close()
    store = Store(path)
    assert "latest_results" in store.db.view_names()
    assert [m.name for m in migrations.pending(store.db)] == []
    store.close()


def test_database_with_results_upgrades_and_keeps_them(tmp_path):
    """A leaderboard written before tags and flags existed keeps its rows, and its views see them."""
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(str(path))
    migrations.apply(db, stop_before="m003_run_tags")
    db["runs"].insert({"id": 1, "suite_name": "s", "machine_hash": "m" * 64, "started_at": "2026-01-01"})
    db["cells"].insert({"id": 1, "run_id": 1, "cell_key": "k", "model": "m", "dataset": "d", "method": "dense",
                        "backend": "b", "suite": "accuracy", "status": "ok", "finished_at": "2026-01-01"})
    db["measurements"].insert({"id": 1, "run_id": 1, "cell_id": 1, "metric": "top1", "value": 0.9, "unit": "f"})
    db.close()
    store = Store(path)
    rows = list(store.db.query("SELECT metric, value, flag, tag, machine_hash FROM latest_results"))
    assert rows == [{"metric": "top1", "value": 0.9, "flag": None, "tag": None, "machine_hash": "m" * 64}]
    store.close()


def test_latest_result_is_per_cell_and_machine(memory_store):
    """A newer run on another machine does not hide a machine's own latest result."""
    for machine, value in (("a" * 64, 1.0), ("b" * 64, 2.0), ("a" * 64, 3.0)):
        run = memory_store.create_run(suite_name="s", suite_sha256="x", machine_hash=machine)
        memory_store.record_cell(run, _cell(), [{"metric": "p50_ms", "value": value, "unit": "ms"}])
    rows = {r["machine_hash"][0]: r["value"] for r in memory_store.db.query("SELECT * FROM latest_results")}
    assert rows == {"a": 3.0, "b": 2.0}


def test_flags_and_tags_are_stored(memory_store):
    run = memory_store.create_run(suite_name="s", suite_sha256="x", tag="nightly")
    memory_store.record_cell(run, _cell(), [{"metric": "top1_retained", "value": 0.9, "unit": "ratio",
                                             "flag": "quality gate: top1 retained 0.9 < 0.99"}])
    row = next(memory_store.db.query("SELECT flag, tag FROM results"))
    assert row == {"flag": "quality gate: top1 retained 0.9 < 0.99", "tag": "nightly"}
    assert memory_store.latest_run_for_suite("x", tag="nightly")["id"] == run
    assert memory_store.latest_run_for_suite("x") is None  # an untagged resume never continues a nightly


def test_record_cell_writes_measurements_and_samples_atomically(memory_store):
    run = memory_store.create_run(suite_name="s", suite_sha256="x")
    cid = memory_store.record_cell(run, _cell(), [
        {"metric": "p50_ms", "value": 1.0, "unit": "ms", "params": {"batch_size": 1},
         "samples": [1.0, 2.0, 3.0], "samples_name": "p50_ms@batch_size=1"},
        {"metric": "p90_ms", "value": 2.0, "unit": "ms", "params": {"batch_size": 1}},
    ])
    rows = list(memory_store.db.query("SELECT metric, sample_set_id FROM measurements WHERE cell_id = ?", [cid]))
    assert [r["metric"] for r in rows] == ["p50_ms", "p90_ms"]
    sample = memory_store.db["sample_sets"].get(rows[0]["sample_set_id"])
    assert sample["n"] == 3 and sample["samples"] == "[1.0, 2.0, 3.0]"
    # A measurement that fails to insert rolls back the whole cell.
    with pytest.raises(KeyError, match="unit"):
        memory_store.record_cell(run, _cell("k2"), [{"metric": "x", "value": 1.0}])  # no unit
    assert memory_store.db.execute("SELECT count(*) FROM cells WHERE cell_key = 'k2'").fetchone()[0] == 0


def test_a_cell_is_never_recorded_twice_in_a_run(memory_store):
    run = memory_store.create_run(suite_name="s", suite_sha256="x")
    memory_store.record_cell(run, _cell(), [])
    with pytest.raises(sqlite3.IntegrityError):
        memory_store.record_cell(run, _cell(), [])


def test_failed_cell_is_replaced_when_retried(memory_store):
    run = memory_store.create_run(suite_name="s", suite_sha256="x")
    memory_store.record_cell(run, _cell(status="failed"), [])
    memory_store.record_cell(run, _cell(status="ok"), [{"metric": "top1", "value": 0.9, "unit": "fraction"}])
    assert memory_store.cell_statuses(run) == {"k1": "ok"}


def test_readonly_connection_refuses_writes(tmp_path):
    path = tmp_path / "l.db"
    Store(path).close()
    before = path.read_bytes()
    conn = open_readonly(path)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):  # the authorizer, before mode=ro
        conn.execute("INSERT INTO metrics (name) VALUES ('x')")
    conn.set_authorizer(None)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # and mode=ro below it
        conn.execute("INSERT INTO metrics (name) VALUES ('x')")
    conn.close()
    assert path.read_bytes() == before


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no leaderboard database"):
        open_readonly(tmp_path / "none.db")


def test_stored_json_keeps_the_text_existing_databases_hold(memory_store):
    """Parameters are stored as canonical JSON with json.dumps' spaces (``compact=False``): comparisons and
    baseline look-ups match them as text, so rows written before and after any change must agree."""
    from harness.core.identity import canonical
    from harness.store.db import to_json

    params = {"sparsity": 0.5, "bits": 4, "steps": [{"name": "kbit", "params": {"b": 1, "a": 2}}]}
    assert to_json(params) == canonical(params, compact=False) == (
        '{"bits": 4, "sparsity": 0.5, "steps": [{"name": "kbit", "params": {"a": 2, "b": 1}}]}')
    assert canonical(params) == '{"bits":4,"sparsity":0.5,"steps":[{"name":"kbit","params":{"a":2,"b":1}}]}'
    run = memory_store.create_run(suite_name="s")
    cell = dict(_cell(), method_params={"sparsity": 0.5, "bits": 4})
    memory_store.record_cell(run, cell, [{"metric": "p50_ms", "value": 1.0, "unit": "ms", "params": {"batch_size": 1}}])
    row = next(memory_store.db.query("SELECT c.method_params, m.params FROM cells c JOIN measurements m "
                                     "ON m.cell_id = c.id"))
    assert row == {"method_params": '{"bits": 4, "sparsity": 0.5}', "params": '{"batch_size": 1}'}
    assert memory_store.measurement_values(run, "k1") == [("p50_ms", to_json({"batch_size": 1}), 1.0)]
