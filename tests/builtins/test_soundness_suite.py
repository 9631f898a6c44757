"""The soundness suite end to end through the real CLI: honest results pass, and a method that lies
about its sparsity, a backend that computes another function, one whose timing path computes
something else (TEST01) and one that caches results (TEST04) are each flagged and never ranked."""

from __future__ import annotations

import json
import sqlite3

import pytest

SUSPICIOUS = '''
import time

from harness.api import BackendSpec, InProcessSession, MethodSpec, hookimpl


def prune_half(ctx):
    import torch
    from torch.nn.utils import prune

    targets = [(m, "weight") for m in ctx.module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=0.5)
    for layer, name in targets:
        prune.remove(layer, name)
    return ctx.module


class Torch(InProcessSession):
    """Eager torch, as torch-cpu; subclasses bend one thing."""

    def __init__(self, artifact, params):
        self.module = artifact.load_torch()
        self.info = {"runtime": "torch", "version": "test", "threads": 1}

    def compute(self, x):
        import numpy as np
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def bind(self, x):
        return lambda: self.compute(x)


class Noisy(Torch):
    """Another function: one logit shifted."""

    def compute(self, x):
        out = super().compute(x)
        out[:, 3] += 2.0
        return out


class TwoFaced(Torch):
    """Honest outputs when asked, but the timed call skips the model."""

    def run(self, x):
        return self.compute(x)

    def bind(self, x):
        import numpy as np

        zeros = np.zeros((len(x), 10), dtype=np.float32)
        return lambda: zeros


class Caching(Torch):
    """Remembers the last input's result: a repeated input costs nothing."""

    def __init__(self, artifact, params):
        super().__init__(artifact, params)
        self.last = [None, None]

    def bind(self, x):
        key = x.tobytes()

        def call():
            if self.last[0] == key:
                return self.last[1]
            out = self.compute(x)
            time.sleep(0.002)
            self.last[:] = [key, out]
            return out

        return call


@hookimpl
def harness_register_methods(register):
    register(MethodSpec(name="liar", apply=prune_half, claims=lambda p: {
        "sparsity": 0.9, "sparsity_scope": "conv+linear weights", "magic": True}))


@hookimpl
def harness_register_backends(register):
    for name, cls in (("noisy", Noisy), ("two-faced", TwoFaced), ("caching", Caching)):
        register(BackendSpec(name=name, session=lambda artifact, params, _c=cls: _c(artifact, params),
                             accepts=("torch",)))
'''

SUITE = """
name = "soundness"
seeds = [0]

[[matrix]]
models = [{ name = "mlp", hidden = 16 }]
datasets = ["digits"]
methods = ["dense", { name = "global-magnitude", sparsity = 0.5 }, "liar", "int8-dynamic"]
backends = ["torch-cpu", "onnxruntime-cpu"]
suites = ["soundness"]

[[matrix]]
models = [{ name = "mlp", hidden = 16 }]
datasets = ["digits"]
methods = ["dense"]
backends = ["noisy", "two-faced", "caching"]
suites = ["soundness"]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import os
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("soundness")
    plugins = tmp / "plugins"
    plugins.mkdir()
    (plugins / "suspicious.py").write_text(SUSPICIOUS)
    suite = tmp / "s.toml"
    suite.write_text(SUITE)
    db = tmp / "s.db"
    env = dict(os.environ, HARNESS_CACHE_DIR=str(tmp / "cache"))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "harness.cli", "--plugins-dir", plugins, *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=1200, cwd=tmp)

    proc = cli("run", suite, "--db", db, "-q")
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT method, backend, metric, value, flag, info FROM results").fetchall()
    conn.close()
    by = {}
    for method, backend, metric, value, flag, info in rows:
        by.setdefault((method, backend), {})[metric] = (value, flag, json.loads(info))
    return proc, by, cli, db


def flags(row: dict) -> str:
    return "; ".join(sorted({f for _, f, _ in row.values() if f}))


def test_run_records_every_cell(run):
    proc, by, _, _ = run
    assert proc.returncode == 0, proc.stderr
    assert "11 cells recorded now (10 ok, 1 skipped, 0 failed)" in proc.stderr  # int8 does not run in torch


@pytest.mark.parametrize("method, backend", [("dense", "torch-cpu"), ("dense", "onnxruntime-cpu"),
                                             ("global-magnitude", "torch-cpu"), ("global-magnitude", "onnxruntime-cpu"),
                                             ("int8-dynamic", "onnxruntime-cpu")])
def test_honest_results_pass(run, method, backend):
    _, by, _, _ = run
    row = by[(method, backend)]
    assert row["claims_ok"][0] == 1.0 and row["test01_ok"][0] == 1.0
    assert row["top1_agreement"][0] >= 0.99 and row["max_abs_diff"][0] < 1e-3
    assert not any(word in flags(row) for word in ("claim", "disagrees", "TEST01"))  # TEST04 rests on timing


def test_checked_claims_are_recorded(run):
    _, by, _, _ = run
    pruned = by[("global-magnitude", "onnxruntime-cpu")]["claims_ok"][2]
    assert {(c["claim"], c["format"]) for c in pruned["checks"]} == {("sparsity", "torch"), ("sparsity", "onnx")}
    assert all(abs(c["measured"] - 0.5) <= 0.005 for c in pruned["checks"])
    int8 = by[("int8-dynamic", "onnxruntime-cpu")]
    checked = {c["claim"]: c for c in int8["claims_ok"][2]["checks"]}
    assert set(checked) == {"weight_bits", "weight_dtype"} and checked["weight_dtype"]["measured"] == "int8"
    assert int8["claims_unchecked"][0] == 1 and "activation" in int8["claims_unchecked"][2]["unchecked"]


def test_a_false_claim_is_flagged(run):
    _, by, _, _ = run
    for backend in ("torch-cpu", "onnxruntime-cpu"):
        row = by[("liar", backend)]
        assert row["claims_ok"][0] == 0.0
        assert "soundness: claim sparsity 0.9 not true of the artifact: measured 0.5" in row["claims_ok"][1]
        assert row["claims_unchecked"][0] == 1  # 'magic' is reported, not passed


def test_a_backend_computing_another_function_is_flagged(run):
    _, by, _, _ = run
    row = by[("dense", "noisy")]
    assert row["max_abs_diff"][0] == pytest.approx(2.0, abs=1e-4)
    assert row["top1_agreement"][1].startswith("soundness: disagrees with the reference (onnxruntime, fp32)")


def test_timed_outputs_that_differ_fail_test01(run):
    _, by, _, _ = run
    row = by[("dense", "two-faced")]
    assert row["top1_agreement"][0] >= 0.99 and row["top1_agreement"][1] is None  # accuracy mode is honest
    assert row["test01_ok"][0] == 0.0 and "TEST01: outputs of the timing path differ" in row["test01_ok"][1]


def test_a_result_cache_fails_test04(run):
    _, by, _, _ = run
    row = by[("dense", "caching")]
    assert row["test04_ok"][0] == 0.0 and row["test04_ratio"][0] < 0.5  # a cache hit skips 2 ms of sleep
    assert "TEST04: one repeated input runs" in row["test04_ok"][1]


def test_flagged_rows_are_never_ranked(run):
    _, _, cli, db = run
    out = cli("leaderboard", "--db", db, "--sort", "top1_agreement", "--format", "json")
    assert out.returncode == 0, out.stderr
    board = json.loads(out.stdout)
    for r in board:
        if r["method"] == "liar" or r["backend"] in ("noisy", "two-faced", "caching"):
            assert r["rank"] is None and r["flags"].startswith("soundness: ")
