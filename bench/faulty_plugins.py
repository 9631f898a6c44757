"""Faulty-plugin modes tried through the real CLI, one ``harness run`` per mode: is each handled?

Usage: ``python bench/faulty_plugins.py [--code DIR] [--timeout-s 30] [MODE ...]``

``--code`` is the checkout whose harness runs (default: this one), so the same table can be taken
of an older revision (``git worktree add /tmp/old main``; ``--code /tmp/old``). A mode is
*handled* when the cell is recorded (failed with a reason, or ok), a cell measured before it in the
same run is kept, the driver prints no traceback, its output stays under 64 KiB, and no process
the plugin started is left running.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
FIXTURE = HERE / "tests" / "fixtures" / "faulty_suites"
sys.path.insert(0, str(FIXTURE))

SUITE = """
name = "faulty-{mode}"
[[matrix]]
models = ["toy-cnn"]
datasets = ["toy-blobs"]
methods = ["dense"]
suites = ["faulty-ok-first", "faulty-{mode}"]
[settings.faulty-{mode}]
marker = "{marker}"
[settings.execution]
timeout_s = {timeout}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def try_mode(mode: str, code: Path, timeout_s: float, work: Path) -> dict:
    """Run one mode; what happened."""
    folder = work / mode
    folder.mkdir()
    marker = folder / "marker"
    suite = folder / "suite.toml"
    suite.write_text(SUITE.format(mode=mode, marker=marker, timeout=timeout_s))
    db = folder / "f.db"
    env = dict(os.environ, PYTHONPATH=f"{code}:{code / 'plugins'}", HARNESS_CACHE_DIR=str(work / "cache"))
    # Output to files, not pipes: a stray process that inherited them would keep a pipe open for good.
    with open(folder / "out", "wb") as fo, open(folder / "err", "wb") as fe:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "--plugins-dir", str(FIXTURE), "run", str(suite),
                                 "--db", str(db), "--no-leaderboard"], stdout=fo, stderr=fe, env=env,
                                cwd=folder)  # not the checkout: python -m imports from the working directory first
        proc.wait(timeout=600)
    out = (folder / "out").read_bytes() + (folder / "err").read_bytes()
    rows = {}
    if db.exists():
        conn = sqlite3.connect(db)
        rows = {s: (st, r, i) for s, st, r, i in conn.execute("SELECT suite, status, reason, info FROM cells")}
        conn.close()
    mine = rows.get(f"faulty-{mode}")
    json_ok = True
    if db.exists():  # every JSON column readable by SQLite's JSON functions (a NaN is not JSON)
        conn = sqlite3.connect(db)
        json_ok = not conn.execute("SELECT count(*) FROM measurements WHERE NOT (json_valid(params) AND "
                                   "json_valid(stats) AND json_valid(info))").fetchone()[0] and \
            not conn.execute("SELECT count(*) FROM cells WHERE NOT json_valid(info)").fetchone()[0]
        conn.close()
    stray = None
    if marker.exists():
        pids = [int(p) for p in marker.read_text().split() if p.isdigit()]
        left = [p for p in pids if _alive(p)]
        stray = bool(left)
        for pid in left:
            os.kill(pid, 9)
    info = json.loads(mine[2]) if mine and mine[2] else {}
    result = {
        "mode": mode, "exit": proc.returncode, "driver_output_bytes": len(out),
        "traceback_in_driver_output": b"Traceback" in out, "recorded": mine is not None,
        "status": mine[0] if mine else None, "reason": (mine[1] or "")[:120] if mine else None,
        "earlier_cell_kept": rows.get("faulty-ok-first", (None,))[0] == "ok", "stray_alive": stray,
        "output_in_info": "output" in info, "json_ok": json_ok,
    }
    result["handled"] = (result["recorded"] and result["earlier_cell_kept"] and not result["traceback_in_driver_output"]
                         and result["driver_output_bytes"] < 65536 and not stray and json_ok)
    return result


def main() -> None:
    import faulty_suites

    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=HERE)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("modes", nargs="*")
    args = parser.parse_args()
    modes = args.modes or [m for m in faulty_suites.MODES if m != "ok-first"]
    with tempfile.TemporaryDirectory() as tmp:
        try_mode("ok-first", args.code.resolve(), 600, Path(tmp))  # builds the toy artifact once, untimed
        results = [try_mode(m, args.code.resolve(), args.timeout_s, Path(tmp)) for m in modes]
    print("| mode | recorded | status | earlier cell kept | traceback in driver output | driver output (bytes) "
          "| stray process | JSON valid | handled |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['recorded']} | {r['status']} | {r['earlier_cell_kept']} | "
              f"{r['traceback_in_driver_output']} | {r['driver_output_bytes']} | {r['stray_alive']} | "
              f"{r['json_ok']} | {'yes' if r['handled'] else 'NO'} |")
    print(f"\nhandled: {sum(r['handled'] for r in results)} of {len(results)}")
    for r in results:
        print(f"  {r['mode']}: exit {r['exit']}, reason: {r['reason']}")


if __name__ == "__main__":
    main()
