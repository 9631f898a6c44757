"""Figures of the verifier soundness benchmark: ``python bench/verification_figures.py [DB]``.

Runs the ``[[verification]]`` table of ``suites/soundness.toml`` through the real CLI (into ``DB``,
default a temporary file; a private cache) and prints, per generated benchmark, how long generation
took and what it kept, then every verifier's counts on planted and clean instances, its unsound count
and its VNN-COMP score. The figures quoted in the README come from this script.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="verification-figures-"))
    db = Path(sys.argv[1]) if len(sys.argv) > 1 else work / "v.db"
    suite = tomllib.loads((ROOT / "suites" / "soundness.toml").read_text())
    table = suite["verification"][0]
    path = work / "verification.toml"
    path.write_text(_toml(table))
    env = dict(os.environ, HARNESS_CACHE_DIR=str(work / "cache"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--db", str(db), "-q"], env=env,
                          capture_output=True, text=True)
    print(f"run: {time.perf_counter() - t0:.0f} s, exit {proc.returncode}\n{proc.stderr.strip()}")
    conn = sqlite3.connect(db)
    for (info,) in conn.execute("SELECT DISTINCT json_extract(info, '$.benchmark') FROM cells WHERE method='dense'"):
        b = json.loads(info)
        g = b.get("generated") or {}
        print(f"benchmark {b['name']}: {b['counts']}; generated in {g.get('total_s')} s "
              f"(training {g.get('train_s')} s), {g.get('relu_units')} ReLUs, rejected {g.get('rejected')}")
    rows = conn.execute("SELECT model_params, method, backend, metric, params, value, flag FROM results "
                        "WHERE suite = 'verification' ORDER BY model_params, method, backend")
    table_rows: dict = {}
    for mparams, method, backend, metric, params, value, flag in rows:
        arch = json.loads(mparams).get("arch", "?")
        kind = json.loads(params).get("instances")
        row = table_rows.setdefault((arch, method, backend), {"flag": ""})
        row[metric + (f"@{kind}" if kind else "")] = value
        row["flag"] = row["flag"] or (flag or "")
    print("\narch method verifier | planted: verified falsified unknown timeout | clean: verified falsified unknown "
          "timeout | unsound score | flag")
    for (arch, method, verifier), r in table_rows.items():
        p = [int(r.get(f"{o}@planted", 0)) for o in ("verified", "falsified", "unknown", "timeout")]
        c = [int(r.get(f"{o}@clean", 0)) for o in ("verified", "falsified", "unknown", "timeout")]
        extra = f" removed={int(r['counterexamples_removed'])}" if "counterexamples_removed" in r else ""
        print(f"{arch} {method} {verifier} | {p} | {c} | {int(r['unsound'])} {int(r['score'])}{extra} | {r['flag']}")
    conn.close()
    return proc.returncode


def _toml(table: dict) -> str:
    def value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = ['name = "verification-figures"', "seeds = [0]", "", "[[verification]]"]
    lines += [f"{k} = {value(v)}" for k, v in table.items()]
    lines += ["", "[settings.execution]", "timeout_s = 3600"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
