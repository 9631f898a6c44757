"""Wall time of ``suites/smoke.toml``: cold (empty cache and database), then again with everything recorded."""

import time

from conftest import ROOT


def test_smoke_cold_then_recorded(benchmark, cli, tmp_path):
    db = tmp_path / "smoke.db"
    t0 = time.perf_counter()
    cli("run", ROOT / "suites" / "smoke.toml", "--db", db, "-q")
    cold = time.perf_counter() - t0
    benchmark.extra_info["cold_s"] = cold
    # Everything is recorded now: a rerun plans, finds the run complete and measures nothing.
    benchmark.pedantic(cli, args=("run", ROOT / "suites" / "smoke.toml", "--db", db, "-q"), rounds=3)
    print(f"\nsmoke cold: {cold:.1f} s")
