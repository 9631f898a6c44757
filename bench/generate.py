"""A synthetic leaderboard of realistic shape and size, for the query benchmarks.

Real schema (``harness.store.db.Store`` migrates the file), real metric catalogue (the built-in
suites'), rows shaped as the suites write them: per artifact a size cell (every size metric: 13) and, on each
of two backends, an accuracy cell (3 metrics) and a latency cell (6 metrics at batch 1 and 32, with
raw samples), each with the checks its figures need (``check_claims`` on every cell, ``check_agreement``,
``check_test01`` per batch size). 2,000 artifacts make 10,000 cells and 108,000 measurements per run; 12
full runs on one machine and half a run on a second make 1,350,000 measurements. The last full run has planted
latency regressions (``PLANTED``) and every run flags the artifacts whose top1 retained is below 0.99.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from harness.builtins.suites import accuracy, latency, size
from harness.core.identity import digest
from harness.measure.honesty import CHECK_METRICS, CHECKS_SUITE
from harness.store.db import Store, to_json

BACKENDS = ("torch-cpu", "onnxruntime-cpu")
BATCHES = (1, 32)
SAMPLES = 40
#: (artifact index, backend) pairs 25% slower in the last full run.
PLANTED = ((3, "onnxruntime-cpu"), (17, "torch-cpu"), (1234, "onnxruntime-cpu"))


def _identity(model: str, method: str, mparams: dict, backend: str | None, suite: str) -> dict:
    return {"model": model, "model_params": {}, "dataset": "digits", "dataset_params": {}, "method": method,
            "method_params": mparams, "seed": 0, "backend": backend,
            "backend_params": {"threads": 1} if backend else {}, "suite": suite}


def planted(artifacts: int) -> tuple:
    """The ``PLANTED`` regressions a store of ``artifacts`` artifacts holds."""
    return tuple(p for p in PLANTED if p[0] < artifacts)


def generate(path: str | Path, *, artifacts: int = 2000, full_runs: int = 12, partial_run: bool = True,
             seed: int = 0) -> dict:
    """Write the database at ``path``; returns counts (runs, cells, measurements, sample_sets), each
    counted in the written file."""
    path = Path(path)
    store = Store(path)
    for suite in (accuracy, latency, size):
        store.register_metrics(suite.__name__.rsplit(".", 1)[1], suite.METRICS)
    store.register_metrics(CHECKS_SUITE, [CHECK_METRICS["claims"]])
    store.close()
    rng = np.random.default_rng(seed)
    models = [f"model{i:02d}" for i in range(20)]
    arts = []
    per_model = max(1, artifacts // len(models))  # sparsity spread over [0, 1) at any size (k / 100 at 2,000)
    for a in range(artifacts):
        model = models[a % len(models)]
        k = a // len(models)
        method, mparams = ("dense", {}) if k == 0 else ("global-magnitude", {"sparsity": round(k / per_model, 2)})
        arts.append((model, method, mparams))
    base_ms = rng.uniform(0.02, 2.0, size=(artifacts, len(BACKENDS)))
    top1 = np.clip(0.97 - np.array([m[2].get("sparsity", 0) for m in arts]) ** 4 * 0.5, 0, 1)
    machines = ["a" * 8 + digest("machine-a", 56), "b" * 8 + digest("machine-b", 56)]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA journal_mode=MEMORY")
    cell_id = meas_id = sample_id = 0
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [(r, machines[0], artifacts) for r in range(full_runs)]
    if partial_run:
        runs.append((full_runs, machines[1], artifacts // 2))
    keys: dict = {}
    for r, machine, n_art in runs:
        run_id = r + 1
        started = t0 + timedelta(days=r)
        conn.execute("INSERT INTO runs (id, suite_name, suite_sha256, machine, machine_hash, started_at, "
                     "finished_at, status, tag, seeds, plugins, argv) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     [run_id, "nightly", "0" * 64, json.dumps({"hash": machine}), machine, started.isoformat(),
                      (started + timedelta(hours=1)).isoformat(), "complete", "nightly", "[0]", "{}", "[]"])
        cells, meas, samples = [], [], []
        clock = started
        slow = 1.25 if r == full_runs - 1 else 1.0
        for a in range(n_art):
            model, method, mparams = arts[a]
            for backend in (None, *BACKENDS):
                for suite in (("size",) if backend is None else ("accuracy", "latency")):
                    ident = _identity(model, method, mparams, backend, suite)
                    key = keys.setdefault((a, backend, suite), digest(ident))
                    cell_id += 1
                    clock += timedelta(microseconds=300)
                    cells.append((cell_id, run_id, key, model, "{}", "digits", "{}", method, to_json(mparams),
                                  0, backend, '{"threads": 1}' if backend else "{}", suite, "ok",
                                  clock.isoformat(), clock.isoformat()))
                    if suite == "size":
                        for i, spec in enumerate(size.METRICS):
                            meas_id += 1
                            meas.append((meas_id, run_id, cell_id, spec.name, float(1000 + a + i), spec.unit,
                                         "{}", "{}", "{}", None, None))
                    elif suite == "accuracy":
                        t = float(top1[a])
                        dense = float(top1[a % len(models)])
                        retained = t / dense if dense else None
                        flag = (f"quality gate: top1 retained {retained:.4g} < 0.99"
                                if retained is not None and retained < 0.99 else None)
                        for name, value, unit, f in (("top1", t, "fraction", None),
                                                     ("top1_delta", t - dense, "fraction", None),
                                                     ("top1_retained", retained, "ratio", flag)):
                            meas_id += 1
                            meas.append((meas_id, run_id, cell_id, name, value, unit, "{}", "{}", "{}", None, f))
                        meas_id += 1
                        meas.append((meas_id, run_id, cell_id, "check_agreement", 1.0, "bool", "{}", "{}", "{}",
                                     None, None))
                    else:
                        b = BACKENDS.index(backend)
                        factor = slow if (a, backend) in PLANTED else 1.0
                        for bs in BATCHES:
                            centre = base_ms[a, b] * bs ** 0.8 * factor
                            s = centre * rng.lognormal(0.0, 0.03, SAMPLES)
                            sample_id += 1
                            samples.append((sample_id, cell_id, f"p50_ms@batch_size={bs}", "ms", SAMPLES,
                                            json.dumps(np.round(s, 7).tolist())))
                            params = json.dumps({"batch_size": bs})
                            mean = float(s.mean())
                            values = (("p50_ms", float(np.median(s))), ("p90_ms", float(np.percentile(s, 90))),
                                      ("p99_ms", float(np.percentile(s, 99))), ("mean_ms", mean),
                                      ("stdev_ms", float(s.std(ddof=1))), ("throughput_sps", bs / mean * 1e3))
                            for name, value in values:
                                meas_id += 1
                                meas.append((meas_id, run_id, cell_id, name, value,
                                             "samples/s" if name == "throughput_sps" else "ms", params,
                                             '{"n": 40}', "{}", sample_id if name == "p50_ms" else None, None))
                            meas_id += 1
                            meas.append((meas_id, run_id, cell_id, "check_test01", 1.0, "bool", params, "{}", "{}",
                                         None, None))
                    meas_id += 1  # every cell of an artifact: its claims (the worker adds it)
                    meas.append((meas_id, run_id, cell_id, "check_claims", 1.0, "bool", "{}", "{}", "{}", None, None))
        conn.executemany("INSERT INTO cells (id, run_id, cell_key, model, model_params, dataset, dataset_params, "
                         "method, method_params, seed, backend, backend_params, suite, status, started_at, "
                         "finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cells)
        conn.executemany("INSERT INTO measurements (id, run_id, cell_id, metric, value, unit, params, stats, info, "
                         "sample_set_id, flag) VALUES (?,?,?,?,?,?,?,?,?,?,?)", meas)
        conn.executemany("INSERT INTO sample_sets (id, cell_id, name, unit, n, samples) VALUES (?,?,?,?,?,?)",
                         samples)
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("runs", "cells", "measurements", "sample_sets")}
    conn.close()
    assert counts == {"runs": len(runs), "cells": cell_id, "measurements": meas_id, "sample_sets": sample_id}
    return counts


if __name__ == "__main__":  # pragma: no cover - manual use: python bench/generate.py out.db
    import sys
    import time

    start = time.perf_counter()
    print(generate(sys.argv[1]), f"{time.perf_counter() - start:.1f} s")
