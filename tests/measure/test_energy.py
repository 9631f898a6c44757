"""Energy counters: RAPL read from a powercap tree (wraparound), and the reasons when none can be read."""

import sqlite3

import pytest

from harness.measure import energy


def _package(root, n, value, wrap=1_000_000, name=None):
    pkg = root / f"intel-rapl:{n}"
    pkg.mkdir(parents=True)
    (pkg / "energy_uj").write_text(f"{value}\n")
    (pkg / "max_energy_range_uj").write_text(f"{wrap}\n")
    (pkg / "name").write_text(f"{name or f'package-{n}'}\n")
    sub = root / f"intel-rapl:{n}:0"  # a sub-zone (core): inside the package's count, never added again
    sub.mkdir()
    (sub / "energy_uj").write_text("5\n")
    return pkg


def test_rapl_sums_packages_and_adds_back_the_wrap(tmp_path):
    p0 = _package(tmp_path, 0, 999_000)
    p1 = _package(tmp_path, 1, 10_000)
    counter = energy.rapl_counter(tmp_path)
    assert counter.method == "rapl" and "package-0" in counter.source and "package-1" in counter.source
    assert counter.read() == 0.0
    (p0 / "energy_uj").write_text("1000\n")  # wrapped: 999000 -> 1000000 -> 1000, 2000 uJ
    (p1 / "energy_uj").write_text("13000\n")  # 3000 uJ
    assert counter.read() == pytest.approx(5.0)  # millijoules
    (p0 / "energy_uj").write_text("3000\n")
    assert counter.read() == pytest.approx(7.0)


def test_reasons_when_no_counter_can_be_read(tmp_path):
    with pytest.raises(energy.EnergyUnavailable, match="does not exist"):
        energy.rapl_counter(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(energy.EnergyUnavailable, match="no intel-rapl:N package domain"):
        energy.rapl_counter(tmp_path / "empty")
    pkg = _package(tmp_path / "bad", 0, 1)
    (pkg / "energy_uj").write_text("not a number\n")
    with pytest.raises(energy.EnergyUnavailable, match="cannot be read"):
        energy.rapl_counter(tmp_path / "bad")
    with pytest.raises(energy.EnergyUnavailable, match="no energy counter for device 'tpu'"):
        energy.counter_for("tpu")


def test_nvml_says_why_it_cannot_read():
    try:
        counter = energy.nvml_counter(0)
    except energy.EnergyUnavailable as exc:
        assert "NVML" in str(exc) or "nvidia-ml-py" in str(exc)
    else:  # a machine with an NVIDIA GPU: the counter reads and never runs backwards
        assert counter.method == "nvml" and counter.read() == 0.0 and counter.read() >= 0.0


SUITE = """
name = "energy"
[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 16 }]
methods = [{ name = "dense" }]
backends = ["onnxruntime-cpu"]
suites = ["energy"]
[settings.energy]
duration_s = 0.05
idle_s = 0.0
"""


def test_suite_measures_or_skips_with_the_reason(harness_cli, suite_file, tmp_path):
    db = tmp_path / "e.db"
    proc = harness_cli("run", suite_file(SUITE), "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    status, reason = conn.execute("SELECT status, reason FROM cells WHERE suite = 'energy'").fetchone()
    try:
        energy.rapl_counter()
    except energy.EnergyUnavailable as exc:  # this machine has no readable counter: the cell says why
        assert status == "skipped" and reason == f"energy: {exc}"
        assert conn.execute("SELECT count(*) FROM measurements WHERE metric = 'energy_mj'").fetchone()[0] == 0
    else:
        assert status == "ok", reason
        value, info = conn.execute("SELECT value, info FROM measurements WHERE metric = 'energy_mj'").fetchone()
        assert value >= 0 and '"method": "rapl"' in info
