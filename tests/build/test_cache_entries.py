"""Cache entries through the real CLI: each file's sha256 is recorded and verified, a damaged entry is
rebuilt once (and the cell's info says so), a hostile module file in the cache runs nothing, and
temporary folders of killed runs are cleaned up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import payload_runs_under_plain_load, write_module_payload

from harness.core.files import HASHES, check_entry, record_hashes

SUITE = """
name = "cache"
seeds = [0]

[[matrix]]
models = ["mlp"]
datasets = ["digits"]
methods = [{ name = "global-magnitude", sparsity = 0.5 }]
backends = ["torch-cpu"]
suites = ["accuracy"]
"""


def _cli(cache: Path, *args, timeout=600):
    env = dict(os.environ, HARNESS_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _cells(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT method, status, reason, info FROM cells")]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One run that fills a cache: (suite file, cache folder)."""
    tmp = tmp_path_factory.mktemp("cache")
    suite = tmp / "cache.toml"
    suite.write_text(SUITE)
    proc = _cli(tmp / "cache", "run", suite, "--db", tmp / "first.db", "-q")
    assert proc.returncode == 0, proc.stderr
    return suite, tmp / "cache"


@pytest.fixture
def cache(built, tmp_path):
    """A private copy of the filled cache, for one test to damage."""
    copy = tmp_path / "cache"
    shutil.copytree(built[1], copy, symlinks=True)
    return copy


def _entries(cache: Path, kind: str) -> list[Path]:
    return sorted(p for p in (cache / kind).iterdir() if not p.name.startswith("."))


def test_every_entry_records_the_sha256_of_every_file(built):
    _, cache = built
    for kind, files in (("artifacts", {"artifact.json", "module.pt", "model.onnx"}),
                        ("weights", {"weights.pt", "weights.json"})):
        for entry in _entries(cache, kind):
            recorded = json.loads((entry / HASHES).read_text())
            assert set(recorded) == files
            assert check_entry(entry) is None


#: Pairs of damaged files, one run each: an artifact's file and a trained reference's file at once
#: (the retrained weights are bit-identical, so the artifact keeps its key and is checked too).
DAMAGE = [(("artifacts", "module.pt"), ("weights", "weights.pt")),
          (("artifacts", "artifact.json"), ("weights", "weights.json")),
          (("artifacts", "model.onnx"), ("weights", HASHES)),
          (("artifacts", HASHES), ("weights", "weights.pt"))]


@pytest.mark.parametrize("damaged", DAMAGE, ids=lambda d: "+".join(name for _, name in d))
def test_a_truncated_file_is_found_and_its_entry_rebuilt_once(built, cache, tmp_path, damaged):
    suite, _ = built
    for kind, name in damaged:
        for entry in _entries(cache, kind):
            path = entry / name
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    proc = _cli(cache, "run", suite, "--db", tmp_path / "again.db", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = _cells(tmp_path / "again.db")
    assert cells and all(c["status"] == "ok" for c in cells), cells
    notes = [n for c in cells for n in json.loads(c["info"]).get("cache", [])]
    for kind, name in damaged:
        what = "cached reference weights" if kind == "weights" else "cache entry"
        assert any(n.startswith(what) and f"was corrupt ({name}:" in n and n.endswith("), rebuilt")
                   for n in notes), (name, notes)
        for entry in _entries(cache, kind):
            assert check_entry(entry) is None  # rebuilt whole, hashes match again


def test_a_hostile_cached_module_with_stale_hashes_is_rebuilt_and_runs_nothing(built, cache, tmp_path):
    suite, _ = built
    marker = tmp_path / "marker"
    for entry in _entries(cache, "artifacts"):
        write_module_payload(entry / "module.pt", marker)
    assert payload_runs_under_plain_load(next(iter(_entries(cache, "artifacts"))) / "module.pt", marker)
    proc = _cli(cache, "run", suite, "--db", tmp_path / "again.db", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists()
    notes = [n for c in _cells(tmp_path / "again.db") for n in json.loads(c["info"]).get("cache", [])]
    assert any("module.pt: sha256 mismatch" in n for n in notes), notes


def test_a_hostile_cached_module_with_forged_hashes_is_refused_and_runs_nothing(built, cache, tmp_path):
    """Whoever can write the cache can also rewrite sha256.json: the loader itself must refuse the file."""
    suite, _ = built
    marker = tmp_path / "marker"
    for entry in _entries(cache, "artifacts"):
        write_module_payload(entry / "module.pt", marker)
        record_hashes(entry)
    proc = _cli(cache, "run", suite, "--db", tmp_path / "again.db", "-q")
    assert not marker.exists()
    assert proc.returncode == 1
    failed = [c for c in _cells(tmp_path / "again.db") if c["status"] == "failed"]
    assert failed
    for c in failed:
        assert "module.pt names builtins.exec" in c["reason"] and "refused" in c["reason"], c["reason"]
        assert "delete the folder" in c["reason"]


def test_temp_folders_of_dead_writers_are_removed_and_live_ones_kept(built, cache, tmp_path):
    from harness.core.files import _host_tag

    suite, _ = built
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    artifacts = cache / "artifacts"
    tag = _host_tag()
    stale = [artifacts / f".k1.tmp-{tag}-{dead.pid}-abcd", artifacts / ".k2.1234567890"]
    live = [artifacts / f".k3.tmp-{tag}-{os.getpid()}-efgh", artifacts / ".k4.9876543210"]
    for folder in stale + live:
        folder.mkdir()
        (folder / "module.pt").write_bytes(b"half")
    old = time.time() - 7 * 3600
    os.utime(stale[1], (old, old))  # a name that cannot tell its writer: judged by age
    proc = _cli(cache, "run", suite, "--db", tmp_path / "again.db", "-q")
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in live)


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(2))
def test_a_run_killed_mid_build_leaves_no_temp_folder_after_the_next_run(tmp_path, attempt):
    """kill -9 the driver's process group while a cache entry is being written, then run again."""
    suite = tmp_path / "cache.toml"
    suite.write_text(SUITE)
    cache = tmp_path / "cache"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(cache))
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", suite, "--db", tmp_path / "a.db", "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    seen = False
    while time.time() < deadline and proc.poll() is None:
        temps = [p for sub in ("weights", "artifacts") if (cache / sub).is_dir()
                 for p in (cache / sub).iterdir() if p.name.startswith(".")]
        if temps:
            if attempt:
                time.sleep(0.2)  # a little later into the build
            os.killpg(proc.pid, signal.SIGKILL)
            seen = True
            break
        time.sleep(0.02)
    proc.wait()
    if not seen:
        pytest.skip("the run finished before a temporary folder was seen")
    again = _cli(cache, "run", suite, "--db", tmp_path / "b.db", "-q")
    assert again.returncode == 0, again.stderr
    left = [p for sub in ("weights", "artifacts") for p in (cache / sub).iterdir() if p.name.startswith(".")]
    assert left == []
    for sub in ("weights", "artifacts"):
        for entry in _entries(cache, sub):
            assert check_entry(entry) is None
