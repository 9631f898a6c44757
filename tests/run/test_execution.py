"""Execution: failure isolation, resume after SIGKILL, completed runs, no-resume reruns."""

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.api import Measurement
from harness.run.ray import NODE_RESOURCE, node_resources
from harness.run.task import BrokenArtifacts, CellResult, CellTask
from harness.run.worker import _baseline_lookup
from harness.store.db import to_json

FAULTY_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "faulty"

FAILURES = """
name = "failures"
seeds = [0]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 64 }]
methods = [{ name = "dense" }, { name = "faulty", mode = ["raise", "hang", "abort", "oom"] }]
backends = ["onnxruntime-cpu"]
suites = ["latency", "size"]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 64 }]
methods = ["dense"]
backends = [{ name = "faulty-backend", mode = ["raise", "abort"] }]
suites = ["latency"]

[settings.latency]
profile = "smoke"
min_time_s = 0.05
min_samples = 5

[settings.execution]
# Generous: the limit covers worker start-up, the torch import and the artifact build, which
# take seconds on a loaded two-core CI machine; only the "hang" cell should ever reach it.
timeout_s = 30
memory_limit_mb = 3000
"""

MANY_CELLS = """
name = "resume"
seeds = [0, 1]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 32 }]
methods = [{ name = "dense" }, { name = "random", sparsity = [0.3, 0.6, 0.9] }]
backends = ["onnxruntime-cpu", "torch-cpu"]
suites = ["latency", "size"]

[settings.latency]
profile = "smoke"
min_time_s = 0.3
min_samples = 5
"""


def cells(db):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM cells ORDER BY id")]
    finally:
        conn.close()


def test_failures_are_isolated_and_recorded(harness_cli, suite_file, tmp_path):
    suite = suite_file(FAILURES)
    db = tmp_path / "f.db"
    proc = harness_cli("--plugins-dir", FAULTY_DIR, "run", suite, "--db", db, "-q")
    assert proc.returncode == 1, proc.stderr
    rows = cells(db)
    by = {}
    for r in rows:
        mp = json.loads(r["method_params"])
        bp = json.loads(r["backend_params"]) if r["backend_params"] else {}
        by[(r["method"], mp.get("mode"), r["backend"], bp.get("mode"), r["suite"])] = r
    # The dense cells ran and kept their results despite the failures around them.
    for key in (("dense", None, "onnxruntime-cpu", None, "latency"), ("dense", None, None, None, "size")):
        assert by[key]["status"] == "ok", by[key]["reason"]
    fail = {mode: by[("faulty", mode, "onnxruntime-cpu", None, "latency")] for mode in
            ("raise", "hang", "abort", "oom")}
    assert all(r["status"] == "failed" for r in fail.values())
    assert "RuntimeError: planned failure" in fail["raise"]["reason"]
    assert "timed out after 30 s" in fail["hang"]["reason"]
    assert "SIGABRT" in fail["abort"]["reason"]
    assert "MemoryError" in fail["oom"]["reason"]
    # A failed artifact fails the other suites of the same artifact with the same cause, without rerunning it.
    assert by[("faulty", "hang", None, None, "size")]["status"] == "failed"
    assert "artifact build failed earlier" in by[("faulty", "hang", None, None, "size")]["reason"]
    # Failures inside a backend's session (suite stage) are isolated too.
    assert "RuntimeError: planned failure" in by[("dense", None, "faulty-backend", "raise", "latency")]["reason"]
    assert "SIGABRT" in by[("dense", None, "faulty-backend", "abort", "latency")]["reason"]
    assert "during suite" in by[("dense", None, "faulty-backend", "abort", "latency")]["reason"]
    # Measurements of ok cells are there, failed cells have none.
    conn = sqlite3.connect(db)
    ok_ids = [r["id"] for r in rows if r["status"] == "ok"]
    failed_ids = [r["id"] for r in rows if r["status"] == "failed"]
    n_ok = conn.execute(f"SELECT count(*) FROM measurements WHERE cell_id IN ({','.join(map(str, ok_ids))})")
    assert n_ok.fetchone()[0] > 0
    n_failed = conn.execute(
        f"SELECT count(*) FROM measurements WHERE cell_id IN ({','.join(map(str, failed_ids))})")
    assert n_failed.fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _recorded(db) -> int:
    if not Path(db).exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            return conn.execute("SELECT count(*) FROM cells").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


EXECUTORS = [
    pytest.param("local", {}, id="local"),
    # Ray's start-up makes this one long: it runs in the slow group.
    pytest.param("ray", {"RAY_AUTH_MODE": "disabled"}, id="ray", marks=[pytest.mark.slow, pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="the ray executor is optional: pip install 'compression-harness[ray]'")]),
]


@pytest.mark.parametrize(("executor", "extra_env"), EXECUTORS)
def test_resume_after_sigkill_records_every_cell_exactly_once(suite_file, tmp_path, executor, extra_env):
    suite = suite_file(MANY_CELLS)
    db = tmp_path / "r.db"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp_path / "cache"), **extra_env)
    cmd = [sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "-q", "--executor", executor]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _recorded(db) < 6 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _recorded(db)
    assert before >= 6
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert f"{before} already recorded" in done.stderr
    rows = cells(db)
    keys = [r["cell_key"] for r in rows]
    assert len(keys) == len(set(keys))  # never duplicated
    assert {r["run_id"] for r in rows} == {1}  # resumed the same run
    # 2 seeds x 4 methods x (2 backends x latency + size) = 24 cells, every one exactly once
    assert len(rows) == 24
    assert all(r["status"] == "ok" for r in rows)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT status FROM runs").fetchall() == [("complete",)]
    # No orphaned measurements from the killed cell.
    orphans = conn.execute("SELECT count(*) FROM measurements WHERE cell_id NOT IN (SELECT id FROM cells)")
    assert orphans.fetchone()[0] == 0


def test_complete_run_measures_nothing_and_no_resume_measures_again(harness_cli, suite_file, tmp_path):
    suite = suite_file(MANY_CELLS.replace("seeds = [0, 1]", "seeds = [0]"))
    db = tmp_path / "c.db"
    first = harness_cli("run", suite, "--db", db, "-q")
    assert first.returncode == 0, first.stderr
    assert "12 cells recorded now" in first.stderr
    again = harness_cli("run", suite, "--db", db, "-q")
    assert again.returncode == 0
    assert "0 cells recorded now" in again.stderr and "12 already recorded" in again.stderr
    fresh = harness_cli("run", suite, "--db", db, "-q", "--no-resume")
    assert fresh.returncode == 0
    assert "run 2 (started): 12 cells recorded now" in fresh.stderr
    rows = cells(db)
    run1 = {r["cell_key"]: r["artifact_key"] for r in rows if r["run_id"] == 1}
    run2 = {r["cell_key"]: r["artifact_key"] for r in rows if r["run_id"] == 2}
    assert run1 == run2  # the same cells, sharing the cached artifacts
    artifacts = list((tmp_path / "cache" / "artifacts").iterdir())
    assert len([a for a in artifacts if not a.name.startswith(".")]) == 4


def _task(key: str = "k1", group: str = "g1", **fields) -> CellTask:
    return CellTask(cell_key=key, suite="latency", cell={"model": {"name": "mlp", "params": {}}, "seed": 0,
                                                         "benchmark": False},
                    identity={"model": "mlp"}, artifact_group=group, settings={"profile": "smoke"},
                    cache_dir="/tmp/cache", plugins_dir=None, timeout_s=30.0, **fields)


def test_tasks_and_results_cross_a_process_boundary_as_json():
    task = _task(baseline_key="b", baselines=[["top1", {"batch_size": 1}, 0.9]])
    assert CellTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    result = CellResult("k1", "ok", measurements=[Measurement("p50_ms", 1.5, "ms", params={"batch_size": 1},
                                                              samples=[1.0, 2.0], flag="gate")],
                        info={"artifact_key": "a1"}, executor={"kind": "ray", "node": "n"},
                        started_at="2026-01-01T00:00:00", duration_s=0.5)
    again = CellResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result and isinstance(again.measurements[0], Measurement)
    assert again.artifact_key == "a1"


def test_a_broken_artifact_fails_its_other_cells_without_running_them():
    broken = BrokenArtifacts()
    first, sibling, other = _task("k1", "g1"), _task("k2", "g1"), _task("k3", "g2")
    broken.note(first, CellResult("k1", "failed", stage="suite", reason="suite: boom"))
    assert broken.settled(sibling) is None  # a failing suite breaks only its own cell
    broken.note(first, CellResult("k1", "failed", stage="artifact", error_type="RuntimeError",
                                  reason="artifact: RuntimeError: no", traceback="tb"))
    settled = broken.settled(sibling)
    assert (settled.cell_key, settled.status, settled.stage, settled.error_type, settled.traceback) == (
        "k2", "failed", "artifact", "RuntimeError", "tb")
    assert settled.reason == "artifact build failed earlier in this run: artifact: RuntimeError: no"
    assert broken.settled(other) is None


def test_the_baseline_a_worker_sees_is_what_the_store_holds():
    # The driver hands over the store's params decoded; a suite asks with keyword arguments.
    stored = [("top1", to_json({"batch_size": 1, "split": "test"}), 0.9), ("size_bytes", to_json({}), 10.0)]
    lookup = _baseline_lookup(_task(baselines=[[m, json.loads(p), v] for m, p, v in stored]))
    assert lookup("top1", split="test", batch_size=1) == 0.9
    assert lookup("size_bytes") == 10.0
    assert lookup("top1", batch_size=2, split="test") is None


def test_backends_say_what_a_ray_node_offers_them(harness_host, tmp_path):
    from types import SimpleNamespace

    from harness.api import BackendSpec, hookimpl

    seen = []

    @hookimpl
    def harness_register_backends(register):
        register(BackendSpec(name="plain", session=lambda artifact, params: None))
        register(BackendSpec(name="emulated", session=lambda artifact, params: None,
                             node_resources=lambda cache: seen.append(cache) or {"arm_qemu": 1}))

    host = harness_host(("offers", SimpleNamespace(harness_register_backends=harness_register_backends)),
                        entry_points=False)
    res = node_resources(host, tmp_path)
    assert res[NODE_RESOURCE] == 1.0 and res["arm_qemu"] == 1.0
    assert seen == [tmp_path]  # the run's cache folder, where a backend keeps what it prepared


def test_a_local_ray_instance_offers_arm_qemu_once_the_emulated_root_is_prepared(tmp_path, monkeypatch):
    from harness.plugin.manager import load_host
    from harness_plugins.backends.arm import root_dir

    monkeypatch.delenv("HARNESS_ARM_ROOT", raising=False)
    host = load_host()
    assert "arm_qemu" not in node_resources(host, tmp_path)
    root = root_dir(tmp_path)
    root.mkdir(parents=True)
    (root / ".harness-ready").write_text("")
    assert node_resources(host, tmp_path)["arm_qemu"] == 1.0


def test_the_host_offers_only_what_backends_declare(harness_host, tmp_path, monkeypatch):
    import platform
    import shutil

    assert node_resources(harness_host(entry_points=False), tmp_path) == {NODE_RESOURCE: 1.0}
    monkeypatch.delenv("HARNESS_ARM_ROOT", raising=False)
    offers = node_resources(harness_host(), tmp_path)
    assert ("wasm" in offers) == bool(shutil.which("node") and shutil.which("npm"))
    assert ("aarch64" in offers) == (platform.machine() in ("aarch64", "arm64"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no Node.js: the wasm backend offers nothing
    assert "wasm" not in node_resources(harness_host(), tmp_path)
