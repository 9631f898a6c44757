"""wasm and arm against onnxruntime-cpu: latency ratios and output agreement (issue 4's figures).

- WASM / onnxruntime-cpu p50 ratio, lenet5 dense, batch 1 and 32, 1 and 2 threads (from a harness run).
- Max absolute output difference and top-1 agreement on the digits test split, ``wasm`` and ``arm``
  (emulated; or native on aarch64) against ``onnxruntime-cpu``, for ``dense`` and ``int8-dynamic``,
  through the backends' own sessions on the very same artifact files.
"""

import json
import sqlite3

import numpy as np
import pytest

LATENCY = """
name = "wasm-ratio"
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = ["dense"]
backends = [{ name = "wasm", threads = [1, 2] }, { name = "onnxruntime-cpu", threads = [1, 2] }]
suites = ["latency"]
[settings.latency]
batch_sizes = [1, 32]
profile = "default"
"""

ARTIFACTS = """
name = "agreement"
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = ["dense", "int8-dynamic"]
backends = ["onnxruntime-cpu"]
suites = ["accuracy"]
"""


def test_wasm_over_onnxruntime_latency(benchmark, cli, tmp_path):
    suite = tmp_path / "l.toml"
    suite.write_text(LATENCY)
    db = tmp_path / "l.db"
    cli("run", suite, "--db", db, "-q")
    conn = sqlite3.connect(db)
    p50 = {}
    for backend, bparams, mparams, value in conn.execute(
            "SELECT backend, backend_params, params, value FROM results WHERE metric = 'p50_ms'"):
        p50[(backend, json.loads(bparams)["threads"], json.loads(mparams)["batch_size"])] = value
    ratios = {}
    for threads in (1, 2):
        for batch in (1, 32):
            r = p50[("wasm", threads, batch)] / p50[("onnxruntime-cpu", threads, batch)]
            ratios[f"t{threads}_b{batch}"] = r
            print(f"\nthreads {threads} batch {batch}: wasm {p50[('wasm', threads, batch)] * 1e3:.1f} us, "
                  f"onnxruntime-cpu {p50[('onnxruntime-cpu', threads, batch)] * 1e3:.1f} us, ratio {r:.2f}")
    benchmark.extra_info.update(ratios)
    benchmark.pedantic(lambda: None, rounds=1)


@pytest.mark.parametrize("backend", ["wasm", "arm"])
def test_agreement_with_onnxruntime_cpu(benchmark, cli, tmp_path, backend):
    from harness.api import Artifact, Skip
    from harness.plugin.manager import load_host
    from harness.plugin.params import validate
    from harness_plugins.datasets import load_digits

    suite = tmp_path / "a.toml"
    suite.write_text(ARTIFACTS)
    db = tmp_path / "a.db"
    cli("run", suite, "--db", db, "-q")
    conn = sqlite3.connect(db)
    keys = dict(conn.execute("SELECT DISTINCT method, artifact_key FROM cells"))
    registry = load_host().registry
    test = load_digits(None).test
    for method, key in sorted(keys.items()):
        art = Artifact.open(tmp_path / "cache" / "artifacts" / key)
        outs = {}
        for name in ("onnxruntime-cpu", backend):
            spec = registry.backend(name)
            try:
                session = spec.session(art, validate(spec.params, {}))
            except Skip as exc:  # the runtime is not on this machine (no emulated root, no Node.js)
                pytest.skip(f"{name}: {exc}")
            try:
                outs[name] = np.concatenate([session.run(test.x[i:i + 120]) for i in range(0, len(test), 120)])
            finally:
                session.close()
        diff = float(np.abs(outs[backend] - outs["onnxruntime-cpu"]).max())
        agree = float((outs[backend].argmax(1) == outs["onnxruntime-cpu"].argmax(1)).mean())
        benchmark.extra_info[method] = {"max_abs_diff": diff, "top1_agreement": agree}
        print(f"\n{backend} vs onnxruntime-cpu, {method}: max |diff| {diff:.2e}, top-1 agreement {agree:.4f}")
    benchmark.pedantic(lambda: None, rounds=1)


