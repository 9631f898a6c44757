"""Per-query against block-mean latency: ``python bench/latency_modes.py [--profile P] [--cache DIR]``.

Runs lenet5 and resnet-small (dense, digits) at batch 1 and 32 on onnxruntime-cpu and torch-cpu
through the real CLI twice: ``sampling = "auto"`` (every call timed by itself, the harness's
method) and ``sampling = "block"`` (each sample the mean of a calibrated block of calls, the
method before per-query timing), then prints p50/p90/p99 of both side by side, in microseconds,
with the calls per block. The two runs use one cache, so the trained weights and artifacts are
built once. Run it on a quiet machine: on a busy one both modes carry the neighbours' noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """
name = "latency-modes"
[[matrix]]
models = ["lenet5", "resnet-small"]
datasets = ["digits"]
methods = [{{ name = "dense" }}]
backends = ["onnxruntime-cpu", "torch-cpu"]
suites = ["latency"]
[settings.latency]
batch_sizes = [1, 32]
profile = "{profile}"
sampling = "{sampling}"
"""


def run(sampling: str, profile: str, work: Path, env: dict) -> dict:
    """One run of the suite in ``sampling`` mode; ``{(model, backend, batch): {metric: ms, calls: N}}``."""
    suite = work / f"{sampling}.toml"
    suite.write_text(SUITE.format(profile=profile, sampling=sampling))
    db = work / f"{sampling}.db"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--db", str(db), "-q"],
                          env=env, capture_output=True, text=True)
    print(f"{sampling}: {time.perf_counter() - t0:.0f} s, exit {proc.returncode} {proc.stderr.strip()[-2000:]}",
          file=sys.stderr)
    out: dict = {}
    rows = sqlite3.connect(db).execute(
        "SELECT c.model, c.backend, m.metric, m.value, m.params, m.info FROM measurements m "
        "JOIN cells c ON c.id = m.cell_id WHERE m.metric IN ('p50_ms', 'p90_ms', 'p99_ms')")
    for model, backend, metric, value, params, info in rows:
        cell = out.setdefault((model, backend, json.loads(params)["batch_size"]), {})
        cell[metric] = value
        cell["calls"] = json.loads(info)["inner_loops"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", help="latency profile (smoke, default, nightly)")
    parser.add_argument("--cache", help="cache folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="latency-modes-"))
    env = dict(os.environ, HARNESS_CACHE_DIR=args.cache or str(work / "cache"))
    per_query = run("auto", args.profile, work, env)
    blocks = run("block", args.profile, work, env)
    print(f"profile {args.profile}; microseconds per batch; 'calls' = calls per sample\n")
    print("| model | backend | batch | per-query p50 | p90 | p99 | calls | block-mean p50 | p90 | p99 | calls |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(per_query):
        a, b = per_query[key], blocks.get(key, {})
        cells = [f"{a[m] * 1e3:,.1f}" for m in ("p50_ms", "p90_ms", "p99_ms")] + [str(a["calls"])]
        cells += [f"{b[m] * 1e3:,.1f}" if m in b else "-" for m in ("p50_ms", "p90_ms", "p99_ms")]
        cells.append(str(b.get("calls", "-")))
        print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
