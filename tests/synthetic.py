"""Leaderboards written through the real store with chosen values, for query tests.

Cells are recorded with :meth:`harness.store.db.Store.record_cell` exactly as the driver records
them (identity, cell key, measurements, raw samples, flags); only the numbers are chosen, from
seeded random generators, so every test is deterministic.
"""

from __future__ import annotations

import json

import numpy as np

from harness.builtins.suites import accuracy as acc_suite
from harness.builtins.suites import latency as lat_suite
from harness.builtins.suites import size as size_suite
from harness.core.identity import digest
from harness.measure.honesty import CHECK_METRICS, CHECKS_SUITE
from harness.measure.timing import median_ci
from harness.store.db import Store, now

MACHINE_A = {"hash": "aaaa1111" + "0" * 56, "cpu_model": "Test CPU A", "logical_cores": 2}
MACHINE_B = {"hash": "bbbb2222" + "0" * 56, "cpu_model": "Test CPU B", "logical_cores": 8}
SUITE_SHA = "5" * 64


def open_store(path) -> Store:
    """A migrated store with the built-in metric catalogue."""
    store = Store(path)
    for name, module in (("accuracy", acc_suite), ("latency", lat_suite), ("size", size_suite)):
        store.register_metrics(name, module.METRICS)
    store.register_metrics(CHECKS_SUITE, [CHECK_METRICS["claims"]])  # as the driver does
    return store


def passed(check: str, **params) -> dict:
    """A passed check's measurement (``check_claims``...), as every cell of the built-in suites records one."""
    return {"metric": f"check_{check}", "value": 1.0, "unit": "bool", "params": params}


def new_run(store: Store, *, machine: dict = MACHINE_A, tag: str | None = None, suite_sha: str = SUITE_SHA) -> int:
    """A complete run on ``machine``; runs created later start later."""
    return store.create_run(suite_name="synthetic", suite_sha256=suite_sha, machine=machine,
                            machine_hash=machine["hash"], tag=tag, status="complete", seeds=[0])


def identity(method: str, params: dict, backend: str | None, suite: str, model: str = "lenet5") -> dict:
    """A cell identity as :attr:`harness.plan.cells.Cell.identity` builds it."""
    return {"model": model, "model_params": {}, "dataset": "digits", "dataset_params": {}, "method": method,
            "method_params": params, "seed": 0, "backend": backend,
            "backend_params": {"threads": 1} if backend else {}, "suite": suite}


def record(store: Store, run_id: int, ident: dict, measurements: list[dict], status: str = "ok") -> int:
    """Record one cell with ``measurements`` (``status="failed"``: a failed cell, as the driver records one)."""
    row = dict(ident, cell_key=digest(ident), artifact_group=digest([ident["model"], ident["method"],
                                                                     ident["method_params"]]),
               status=status, started_at=now(), finished_at=now())
    if status != "ok":
        row.update(reason="RuntimeError: synthetic failure", error_type="RuntimeError")
    return store.record_cell(run_id, row, measurements)


def latency(centre_ms: float, *, n: int = 60, cv: float = 0.02, seed: int = 0, batch: int = 1,
            processes: int = 1, stdev: bool = False) -> list[dict]:
    """Latency measurements at one batch size with ``n`` lognormal raw samples around ``centre_ms``.

    The stats hold the samples' coefficient of variation (as :func:`harness.api.summarize` gives it)
    and, with ``processes > 1``, per-process medians and means (the ``n`` samples split among them);
    ``stdev`` adds ``stdev_ms``."""
    rng = np.random.default_rng(seed)
    s = centre_ms * rng.lognormal(0.0, cv, n)
    params = {"batch_size": batch}
    mean = float(s.mean())
    stats = {"n": n, "median_ms": float(np.median(s)), "cv": float(s.std(ddof=1) / mean),
             "unstable": bool(s.std(ddof=1) / mean > 0.10)}
    ci = median_ci(s)
    if ci:
        stats["ci95_median_ms"] = list(ci)
    if processes > 1:
        parts = np.array_split(s, processes)
        stats["per_process"] = {"median_ms": [float(np.median(p)) for p in parts],
                                "mean_ms": [float(p.mean()) for p in parts],
                                "p90_ms": [float(np.percentile(p, 90)) for p in parts]}
    out = [{"metric": "p50_ms", "value": float(np.median(s)), "unit": "ms", "params": params, "stats": stats,
            "samples": [float(v) for v in s], "samples_name": f"p50_ms@batch_size={batch}"}]
    values = [("p90_ms", float(np.percentile(s, 90))), ("mean_ms", mean)]
    if stdev:
        values.append(("stdev_ms", float(s.std(ddof=1))))
    for name, value in values:
        out.append({"metric": name, "value": value, "unit": "ms", "params": params, "stats": stats})
    out.append({"metric": "throughput_sps", "value": batch / mean * 1e3, "unit": "samples/s", "params": params})
    return out + [passed("test01", batch_size=batch), passed("claims")]


def accuracy(top1: float, dense: float, gate: float = 0.99) -> list[dict]:
    """Accuracy measurements, flagged by the quality gate as the accuracy suite flags them."""
    retained = top1 / dense
    flag = f"quality gate: top1 retained {retained:.4g} < {gate:g}" if retained < gate else None
    return [{"metric": "top1", "value": top1, "unit": "fraction"},
            {"metric": "top1_delta", "value": top1 - dense, "unit": "fraction"},
            {"metric": "top1_retained", "value": retained, "unit": "ratio", "flag": flag},
            passed("agreement"), passed("claims")]


def size(gzip_bytes: float, sparsity: float) -> list[dict]:
    """Size measurements (backend-independent)."""
    return [{"metric": "gzip_bytes", "value": gzip_bytes, "unit": "bytes"},
            {"metric": "weight_sparsity", "value": sparsity, "unit": "fraction"}, passed("claims")]


def board(store: Store, run_id: int, entries: list[tuple], *, seed: int = 0, backends=("onnxruntime-cpu",)) -> None:
    """Record a small leaderboard: ``entries`` are (method, params, top1, latency_ms, gzip_bytes)."""
    dense = next(e[2] for e in entries if e[0] == "dense")
    for i, (method, params, top1, ms, gz) in enumerate(entries):
        record(store, run_id, identity(method, params, None, "size"), size(gz, params.get("sparsity", 0.0)))
        for b, backend in enumerate(backends):
            record(store, run_id, identity(method, params, backend, "accuracy"), accuracy(top1, dense))
            record(store, run_id, identity(method, params, backend, "latency"),
                   latency(ms * (1 + b), seed=seed * 1000 + i * 10 + b))


def values(rows: list[dict], key: str) -> list:
    """``[row[key] ...]``; JSON rows from the CLI."""
    return [r[key] for r in rows]


def as_json(text: str):
    """Parse CLI JSON output."""
    return json.loads(text)
