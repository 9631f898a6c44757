"""Harness overhead: the p50 the harness records against a bare ``InferenceSession.run`` loop.

The harness times lenet5 / dense / onnxruntime-cpu (1 thread) at batch 1 and 32 in its worker
process; the bare loop runs the very same ONNX file with the same session options here, in the
same benchmark, before and after the harness run (their mean is the reference, so drift shows).
Target (issue 2): recorded p50 within 5% of the bare loop.
"""

import json
import sqlite3
import statistics
import time

import numpy as np
import onnxruntime as ort
import pytest

SUITE = """
name = "overhead"
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = ["dense"]
backends = [{ name = "onnxruntime-cpu", threads = 1 }]
suites = ["latency"]
[settings.latency]
batch_sizes = [1, 32]
profile = "default"
"""


def bare_p50_ms(path, x, seconds=2.0):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(200):
        sess.run(None, feed)
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        for _ in range(20):
            sess.run(None, feed)
        samples.append((time.perf_counter_ns() - t0) / 20 / 1e6)
    return statistics.median(samples)


@pytest.mark.parametrize("batch", [1, 32])
def test_recorded_p50_against_bare_loop(benchmark, cli, tmp_path, batch):
    suite = tmp_path / "overhead.toml"
    suite.write_text(SUITE)
    db = tmp_path / "o.db"
    # Build the artifact first, so the bare loop can use the very same file.
    cli("run", suite, "--db", db, "-q")
    conn = sqlite3.connect(db)
    key = conn.execute("SELECT artifact_key FROM cells").fetchone()[0]
    onnx_path = tmp_path / "cache" / "artifacts" / key / "model.onnx"
    from sklearn.datasets import load_digits

    x = np.ascontiguousarray((load_digits().images[:batch] / 16.0).astype(np.float32).reshape(batch, 1, 8, 8))
    before = bare_p50_ms(onnx_path, x)
    cli("run", suite, "--db", db, "-q", "--no-resume")
    after = bare_p50_ms(onnx_path, x)
    row = conn.execute("SELECT m.value, m.info FROM measurements m JOIN cells c ON c.id = m.cell_id "
                       "WHERE c.run_id = 2 AND m.metric = 'p50_ms' AND m.params = ?",
                       (json.dumps({"batch_size": batch}),)).fetchone()
    recorded = row[0]
    bare = (before + after) / 2
    ratio = recorded / bare
    benchmark.extra_info.update({"recorded_p50_ms": recorded, "bare_p50_ms_before": before,
                                 "bare_p50_ms_after": after, "ratio": ratio,
                                 "inner_loops": json.loads(row[1])["inner_loops"]})
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\nbatch {batch}: recorded p50 {recorded * 1e3:.2f} us, bare {before * 1e3:.2f}/{after * 1e3:.2f} us, "
          f"ratio {ratio:.3f}")
