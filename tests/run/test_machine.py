"""The machine fingerprint stored with every run."""

from harness.run.machine import fingerprint, git_revision


def test_fingerprint_is_complete_and_stable():
    a, b = fingerprint(), fingerprint()
    assert a["hash"] == b["hash"]
    for key in ("cpu_model", "cpu_flags", "logical_cores", "memory_bytes", "os", "kernel", "python",
                "libraries", "gpus", "node", "cpu_governor"):
        assert key in a
    assert isinstance(a["cpu_flags"], list) and a["logical_cores"] >= 1
    assert a["libraries"]["pluggy"]


def test_hostname_is_not_part_of_the_hash(monkeypatch):
    import platform

    base = fingerprint()["hash"]
    monkeypatch.setattr(platform, "node", lambda: "another-host")
    assert fingerprint()["hash"] == base
    monkeypatch.setattr(platform, "python_version", lambda: "9.9.9")
    assert fingerprint()["hash"] != base


def test_git_revision_outside_a_repository(tmp_path):
    assert git_revision(tmp_path) is None


def test_fingerprint_records_the_clocks_resolution_and_overhead():
    clock = fingerprint()["clock"]
    assert clock["name"] == "time.perf_counter_ns"
    # Measured from back-to-back reads: a positive step, a non-negative cost, far under a millisecond.
    assert 0 < clock["resolution_s"] < 1e-3 and 0 <= clock["overhead_s"] < 1e-3
