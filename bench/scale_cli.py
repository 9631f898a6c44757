"""The scale targets of issue 18, measured through the CLI as a user runs it, on ``bench/generate.py``'s store.

    python bench/scale_cli.py DB [--rounds 3] [--json OUT.json] [--before BEFORE.json]

Generates DB when it is missing (2,000 artifacts, 12.5 runs: 1,350,000 measurements, 125,000 cells), then
times each command (the median of ``--rounds`` cold processes, start-up included) and its peak resident
memory (``wait4``'s ``ru_maxrss``), starts ``harness serve`` and times its canned queries over HTTP, and
prints a Markdown table; ``--before`` adds the columns of an earlier ``--json`` and the ratio.

| query | target |
|---|---|
| filtered leaderboard | under 0.3 s |
| Pareto of 4,000 entries | under 0.5 s |
| compare of 10,000 cells | under 1.5 s and 200 MB |
| ``report`` | under 3 s |
| serve's canned leaderboard and Pareto queries | answer (HTTP 200) |
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent

COMMANDS = {
    "filtered leaderboard": ["leaderboard", "--machine", "aaaa", "--model", "model03", "--backend",
                             "onnxruntime-cpu", "--sort", "p50_ms"],
    "Pareto of 4,000 entries": ["leaderboard", "--machine", "aaaa", "--pareto", "top1:max,p50_ms:min"],
    "compare of 10,000 cells": ["compare", "11", "12"],
    "report (4,000 entries)": ["report", "--machine", "aaaa", "-o", "{tmp}/report.html"],
}

CANNED = {
    "serve: leaderboard?metric=p50_ms": "{db}/leaderboard.json?metric=p50_ms&_shape=array",
    "serve: pareto?top1,p50_ms": "{db}/pareto.json?maximize=top1&minimize=p50_ms&_shape=array",
    "serve: regressions 11 -> 12": "{db}/regressions.json?base=11&new=12&threshold=0.05&_shape=objects",
}


def _cli(args: list[str], db: Path, tmp: str) -> tuple[float, float, int]:
    """(seconds, peak MiB, exit status) of one ``harness`` process."""
    argv = [sys.executable, "-m", "harness.cli", *(a.format(tmp=tmp) for a in args), "--db", str(db)]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, proc.returncode


def _serve(db: Path, rounds: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", "--db", str(db), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    out = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "-/versions.json", timeout=5).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("datasette did not start") from None
                time.sleep(0.3)
        for name, path in CANNED.items():
            times, status, rows = [], None, None
            for _ in range(rounds):
                start = time.perf_counter()
                try:
                    with urllib.request.urlopen(base + path.format(db=db.stem), timeout=300) as resp:
                        body = json.loads(resp.read())
                        status = resp.status
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, None
                times.append(time.perf_counter() - start)
                if body is not None:
                    rows = len(body) if isinstance(body, list) else len(body.get("rows", []))
                    if isinstance(body, dict) and body.get("truncated"):
                        rows = f"{rows} (truncated)"
            out[name] = {"seconds": statistics.median(times), "status": status, "rows": rows}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def measure(db: Path, rounds: int, only: str | None = None) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in COMMANDS.items() if only != "serve" else ():
            runs = [_cli(args, db, tmp) for _ in range(rounds)]
            results[name] = {"seconds": statistics.median(r[0] for r in runs), "peak_mib": max(r[1] for r in runs),
                             "status": runs[-1][2]}
            print(f"{name}: {results[name]}", file=sys.stderr)
    if only != "cli":
        results.update(_serve(db, rounds))
    return results


def table(now: dict, before: dict | None) -> str:
    head = "| query | before | after | ratio |" if before else "| query | time | peak memory / answer |"
    lines = [head, "|---|---|---|---|" if before else "|---|---|---|"]

    def cell(r: dict) -> str:
        if "peak_mib" in r:
            return f"{r['seconds']:.2f} s, {r['peak_mib']:.0f} MiB (exit {r['status']})"
        return f"{r['seconds']:.2f} s, HTTP {r['status']}, {r['rows']} rows"

    for name, r in now.items():
        if before:
            b = before.get(name)
            ratio = f"{b['seconds'] / r['seconds']:.1f}x" if b and r["seconds"] else "-"
            lines.append(f"| {name} | {cell(b) if b else '-'} | {cell(r)} | {ratio} |")
        else:
            lines.append(f"| {name} | {cell(r)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--only", choices=["cli", "serve"], default=None, help="measure only these")
    opts = parser.parse_args()
    if not opts.db.exists():
        sys.path.insert(0, str(HERE))
        from generate import generate

        print(generate(opts.db), file=sys.stderr)
    now = measure(opts.db, opts.rounds, opts.only)
    if opts.json:
        opts.json.write_text(json.dumps(now, indent=1))
    before = json.loads(opts.before.read_text()) if opts.before else None
    print(table(now, before))


if __name__ == "__main__":
    main()
