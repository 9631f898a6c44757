"""The ray executor on a real local Ray instance (two worker processes, custom resources).

A killed driver resumes as with the local executor: that test is parametrized over both executors
in ``test_execution.py``.
"""

import json
import os
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray executor is optional: pip install 'compression-harness[ray]'")

ROOT = Path(__file__).resolve().parents[2]
FAULTY_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "faulty"
ENV = {"RAY_AUTH_MODE": "disabled"}


def records(db):
    """Every cell's identity, status and (metric, params, value) set; latency values dropped (timings differ)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    out = {}
    for c in conn.execute("SELECT * FROM cells"):
        ms = conn.execute("SELECT metric, params, value FROM measurements WHERE cell_id = ?", (c["id"],)).fetchall()
        values = frozenset((m["metric"], m["params"], None if c["suite"] == "latency" else round(m["value"], 9))
                           for m in ms)
        out[c["cell_key"]] = (c["status"], c["reason"] if c["status"] == "skipped" else None, values)
    return out


@pytest.mark.slow
def test_smoke_through_ray_matches_the_local_executor(harness_cli, tmp_path):
    local, ray_db = tmp_path / "local.db", tmp_path / "ray.db"
    a = harness_cli("run", ROOT / "suites" / "smoke.toml", "--db", local, "-q")
    assert a.returncode == 0, a.stderr
    b = harness_cli("run", ROOT / "suites" / "smoke.toml", "--db", ray_db, "-q", "--executor", "ray", env=ENV)
    assert b.returncode == 0, b.stderr
    assert records(ray_db) == records(local)
    conn = sqlite3.connect(ray_db)
    executors = {json.loads(i)["executor"]["kind"] for (i,) in conn.execute(
        "SELECT info FROM cells WHERE status = 'ok'")}
    assert executors == {"ray"}
    # Artifacts were built once (one build task each) and shipped: one cache entry per artifact.
    artifacts = [p for p in (tmp_path / "cache" / "artifacts").iterdir() if not p.name.startswith(".")]
    assert len(artifacts) == 4


SUITE = """
name = "ray-faults"
[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 32 }]
methods = ["dense"]
backends = [BACKENDS]
suites = ["latency"]
[settings.latency]
profile = "smoke"
min_time_s = 0.05
min_samples = 5
"""


def test_a_killed_ray_worker_is_retried_then_recorded_failed(harness_cli, suite_file, tmp_path):
    once, always = tmp_path / "once.marker", tmp_path / "always.marker"
    backends = (f'{{ name = "ray-killer", marker = "{once}" }}, '
                f'{{ name = "ray-killer", marker = "{always}", always = true }}, "onnxruntime-cpu"')
    db = tmp_path / "k.db"
    proc = harness_cli("--plugins-dir", FAULTY_DIR, "run", suite_file(SUITE.replace("BACKENDS", backends)),
                       "--db", db, "-q", "--executor", "ray", env=ENV)
    assert proc.returncode == 1, proc.stderr  # the always-killed cell failed; the others did not
    assert once.exists() and always.exists()  # both really killed their Ray worker
    conn = sqlite3.connect(db)
    rows = {(b, json.loads(p).get("always")): (s, r) for b, p, s, r in conn.execute(
        "SELECT backend, backend_params, status, reason FROM cells")}
    assert rows[("ray-killer", False)][0] == "ok"  # retried on a fresh worker, then measured
    status, reason = rows[("ray-killer", True)]
    assert status == "failed" and "Ray worker lost after 2 retries" in reason
    assert rows[("onnxruntime-cpu", None)][0] == "ok"


def test_cells_no_node_can_run_are_skipped_after_a_bounded_wait(harness_cli, suite_file, tmp_path):
    db = tmp_path / "u.db"
    proc = harness_cli("--plugins-dir", FAULTY_DIR, "run",
                       suite_file(SUITE.replace("BACKENDS", '"needs-unicorn", "onnxruntime-cpu"')),
                       "--db", db, "-q", "--executor", "ray", "--ray-wait", "1", env=ENV)
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT backend, status || ': ' || coalesce(reason, '') FROM cells"))
    assert rows["needs-unicorn"].startswith("skipped: no node offers {'unicorn': 1}")
    assert rows["onnxruntime-cpu"].startswith("ok")


def test_without_ray_the_error_says_how_to_install(harness_cli, suite_file, tmp_path):
    # A directory shadowing 'ray' with a module that fails to import, as a missing install does.
    fake = tmp_path / "noray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('no ray here')")
    proc = harness_cli("run", ROOT / "suites" / "smoke.toml", "--db", tmp_path / "x.db", "-q", "--executor", "ray",
                       env={"PYTHONPATH": f"{fake}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert proc.returncode == 2
    assert "pip install 'compression-harness[ray]'" in proc.stderr
