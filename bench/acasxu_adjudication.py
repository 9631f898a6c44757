"""Adjudication figures on real competition files: ``python bench/acasxu_adjudication.py [TIMEOUT_S] [VERIFIERS]``.

1. VNN-COMP 2021 re-scored from the committed results subset (tests/data/vnncomp2021_results), next to
   the published totals, per benchmark and tool.
2. The ACAS Xu instances committed under tests/data/vnncomp2021/acasxu (4 violated, 2 holds by the
   peers' agreed verdicts), run through the real CLI with every built-in verifier (default timeout
   30 s), with ``truth`` = the published results. Two stores are written: the ``unsound-pgd`` canary
   alone without truth, and every verifier without truth, merged with the first. Both are judged across
   the verifiers as the leaderboard judges them. Per verifier it prints correct holds, correct
   violated, wrong, unknown, timeout, total verifier time, the 2026 score (rank, flags) and score_2021.
   A third run with truth prints the same columns, judged by the peers' verdicts.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
ACAS = DATA / "vnncomp2021" / "acasxu"
INSTANCES = [("1_9", "prop_7"), ("2_9", "prop_8"), ("1_5", "prop_2"), ("3_6", "prop_2"), ("1_1", "prop_3"),
             ("1_1", "prop_1")]


def rescore() -> None:
    from harness.verify.vnncomp2021 import read_results_folder, score_2021

    got = score_2021(read_results_folder(DATA / "vnncomp2021_results"))
    print(f"{'benchmark':10} {'tool':10} {'published':>9} {'re-scored':>9} {'verified':>8} {'falsified':>9}")
    bench = None
    for line in (DATA / "vnncomp2021_results" / "output_multioverhead.excerpt.txt").read_text().splitlines():
        if m := re.fullmatch(r"Category (\S+):", line):
            bench = m.group(1)
        elif m := re.fullmatch(r"(\S+): (-?\d+) \(.*%\)", line):
            t = got[bench][m.group(1)]
            print(f"{bench:10} {m.group(1):10} {int(m.group(2)):9} {t.score:9} {t.verified:8} {t.falsified:9}")


def table(db: Path) -> None:
    from harness.query.adjudication import judged_cells

    out = subprocess.run([sys.executable, "-m", "harness.cli", "leaderboard", "--db", str(db), "--sort", "score",
                          "--format", "json", "--columns", "all"], capture_output=True, text=True, check=True)
    board = {r["backend"]: r for r in json.loads(out.stdout)}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    judged = judged_cells(conn)
    backends = dict(conn.execute("SELECT id, backend FROM latest_cells WHERE suite = 'verification'").fetchall())
    times = {b: v for b, v in conn.execute("SELECT c.backend, m.value FROM latest_cells c JOIN measurements m "
                                           "ON m.cell_id = c.id WHERE m.metric = 'verify_s'")}
    conn.close()
    print(f"{'verifier':12} {'holds ok':>8} {'viol. ok':>8} {'wrong':>5} {'unknown':>7} {'timeout':>7} {'time s':>7} "
          f"{'score':>6} {'rank':>4} {'2021':>5}  flags")
    for cell, j in sorted(judged.items(), key=lambda kv: -kv[1].score):
        name = backends[cell]
        row = board[name]
        holds_ok = sum(i["outcome"] in ("verified", "disputed") and i["points"] > 0 for i in j.instances)
        wrong = j.counts["unsound"] + j.counts["invalid_witness"]
        print(f"{name:12} {holds_ok:8} {j.counts['falsified']:8} {wrong:5} {j.counts['unknown']:7} "
              f"{j.counts['timeout']:7} {times.get(name, 0):7.1f} {j.score:6} {str(row['rank'] or '-'):>4} "
              f"{j.score_2021:5}  {row['flags'] or ''}")


def main() -> int:
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    verifiers = sys.argv[2] if len(sys.argv) > 2 else '"ibp", "crown", "milp", "pgd", "unsound-pgd"'
    rescore()
    work = Path(tempfile.mkdtemp(prefix="acasxu-adjudication-"))
    (work / "acasxu").mkdir()
    (work / "acasxu" / "instances.csv").write_text("".join(
        f"{ACAS / f'ACASXU_run2a_{n}_batch_2000.onnx'},{ACAS / f'{p}.vnnlib'},{timeout:g}\n" for n, p in INSTANCES))
    env = dict(os.environ, HARNESS_CACHE_DIR=str(work / "cache"))

    def run(name: str, verifiers: str, truth: bool) -> Path:
        extra = f', truth = "{DATA / "vnncomp2021_results"}"' if truth else ""
        (work / f"{name}.toml").write_text(
            f'name = "acasxu"\nseeds = [0]\n[[verification]]\nbenchmarks = [{{ name = "folder", path = "acasxu"{extra} '
            f'}}]\nverifiers = [{verifiers}]\n[settings.verification]\ntimeout_s = {timeout:g}\n')
        db = work / f"{name}.db"
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(work / f"{name}.toml"), "--db",
                               str(db), "-q"], env=env, capture_output=True, text=True, cwd=work)
        print(proc.stderr.strip())
        return db

    canary = run("canary", '"unsound-pgd"', False)
    print("\n-- the canary alone, no truth: nothing is known --")
    table(canary)
    rest = run("all", verifiers.replace('"unsound-pgd"', "").strip(", ").replace(", ,", ","), False)
    subprocess.run([sys.executable, "-m", "harness.cli", "merge", str(rest), str(canary), "-o",
                    str(work / "merged.db")], check=True, capture_output=True)
    print("\n-- every verifier (the canary's store merged in), no truth: judged across verifiers --")
    table(work / "merged.db")
    print("\n-- every verifier, truth = the published 2021 results --")
    table(run("truth", verifiers, True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
