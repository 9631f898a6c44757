"""The corrupt-database matrix as figures: every damaged variant against every command, in real processes.

    PYTHONPATH=. python bench/fault_matrix.py            # this checkout
    PYTHONPATH=/path/to/old/checkout python bench/fault_matrix.py   # "before" figures of another one

A case is *handled* when the command exits 2, names the file, prints no traceback and leaves the
file's bytes as they were; anything else is a defect. Prints one row per variant and a total.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from dbfaults import VARIANTS, good, hot_journal, make  # noqa: E402

SUITE = """
name = "never-runs"
seeds = [0]

[[matrix]]
models = ["mlp"]
datasets = [{ name = "synthetic", n = 32 }]
methods = ["dense"]
backends = ["onnxruntime-cpu"]
suites = ["size"]
"""
COMMANDS = {
    "leaderboard": lambda d, t: ["leaderboard", "--db", d],
    "runs": lambda d, t: ["runs", "--db", d],
    "results": lambda d, t: ["results", "--db", d],
    "report": lambda d, t: ["report", "--db", d, "-o", t / "report.html"],
    "compare": lambda d, t: ["compare", "1", "2", "--db", d],
    "sql": lambda d, t: ["sql", "SELECT count(*) FROM runs", "--db", d],
    "run": lambda d, t: ["run", t / "suite.toml", "--db", d, "-q"],
    "merge-src": lambda d, t: ["merge", d, "-o", t / "merged.db"],
    "merge-out": lambda d, t: ["merge", good(t / "good.db"), "-o", d],
}
SKIP = {("zero", "run"), ("zero", "merge-out")}  # a new database to a writer


def case(variant: str, command: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "suite.toml").write_text(SUITE)
        db = hot_journal(t / "x.db") if variant == "hot-journal" else make(variant, t / "x.db")
        before = db.read_bytes()
        args = [str(a) for a in COMMANDS[command](db, t)]
        env = dict(os.environ, HARNESS_CACHE_DIR=str(t / "cache"))
        out = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                             env=env, timeout=300)
        if variant == "hot-journal":  # readers must recover: exit 0 (or 1 for compare's regressions)
            return out.returncode in (0, 1) and "Traceback" not in out.stderr
        return (out.returncode == 2 and str(db) in out.stderr and "Traceback" not in out.stderr
                and db.read_bytes() == before)


def main() -> None:
    total = handled = 0
    print(f"{'variant':14} {'cases':>5} {'handled':>7} {'defects':>7}  defects in")
    for variant in (*VARIANTS, "hot-journal"):
        commands = [c for c in COMMANDS if (variant, c) not in SKIP
                    and not (variant == "hot-journal" and c in ("run", "merge-out"))]
        ok = {c: case(variant, c) for c in commands}
        n, h = len(ok), sum(ok.values())
        total, handled = total + n, handled + h
        print(f"{variant:14} {n:5} {h:7} {n - h:7}  {', '.join(c for c, v in ok.items() if not v)}", flush=True)
    print(f"{'total':14} {total:5} {handled:7} {total - handled:7}")


if __name__ == "__main__":
    main()
