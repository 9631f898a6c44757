"""Out-of-process backends: the runner protocol, wasm under Node.js, arm over qemu and over ssh.

CI prepares Node's package and the emulated arm64 root and starts nothing else: the ssh test
starts a real sshd on 127.0.0.1. On a developer machine without the emulated root or an sshd,
those tests skip with the reason; under CI (``CI=true``) a missing piece is a failure instead.
"""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.api import RunnerError, RunnerSession, TimingPlan, runner_files

FAST = TimingPlan(warmup_iters=3, warmup_s=0.0, min_samples=5, min_time_s=0.0)


def need(condition: bool, reason: str) -> None:
    """Skip without ``condition`` on a developer machine; fail under CI, which must run it."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"CI must exercise this: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def lenet_onnx(tmp_path_factory):
    """A seeded lenet5 exported to ONNX, and its reference onnxruntime session."""
    import onnxruntime as ort
    import torch

    from harness.api import export_onnx
    from harness_plugins.nets import LeNet5

    torch.manual_seed(0)
    path = export_onnx(LeNet5((1, 8, 8), 10), tmp_path_factory.mktemp("m") / "m.onnx", (1, 8, 8))
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return path.read_bytes(), ref


def test_python_runner_computes_and_times(lenet_onnx):
    model, ref = lenet_onnx
    session = RunnerSession([sys.executable, runner_files()["onnx_runner.py"]], model, 1, info={"transport": "t"})
    try:
        assert session.info["transport"] == "t" and session.info["threads"] == 1
        x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
        np.testing.assert_allclose(session.run(x), ref.run(None, {ref.get_inputs()[0].name: x})[0], atol=1e-6)
        result = session.time([x[:1], x[1:2], x[2:3]], FAST)
        assert len(result.samples_s) >= 5 and result.timer.endswith("(runner)")
        assert "warmup_stable" in result.info
        with pytest.raises(RunnerError, match="unknown op"):
            session.request({"op": "dance"})
    finally:
        session.close()
    assert session.proc.returncode == 0


def test_runner_errors_are_clear(tmp_path):
    with pytest.raises(RunnerError, match="runner refused load"):
        RunnerSession([sys.executable, runner_files()["onnx_runner.py"]], b"not an onnx model", 1)
    dead = tmp_path / "dead.py"
    dead.write_text("import sys; sys.stderr.write('boom: no runtime here'); sys.exit(3)")
    with pytest.raises(RunnerError, match="status 3: boom: no runtime here"):
        RunnerSession([sys.executable, str(dead)], b"", 1)
    with pytest.raises(RunnerError, match="cannot start runner"):
        RunnerSession(["/nonexistent/runner"], b"", 1)


# ------------------------------------------------------------------ suites through the backends

SUITE = """
name = "remote"
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = ["dense", "int8-dynamic"]
backends = [BACKEND, "onnxruntime-cpu"]
suites = ["accuracy", "latency"]
[settings.latency]
batch_sizes = [1, 8]
profile = "smoke"
min_time_s = 0.1
min_samples = 5
"""


def run_suite(harness_cli, suite_file, tmp_path, backend_entry, name):
    db = tmp_path / "r.db"
    proc = harness_cli("run", suite_file(SUITE.replace("BACKEND", backend_entry)), "--db", db, "-q", timeout=1200)
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    cells = [dict(r) for r in conn.execute("SELECT * FROM cells")]
    assert all(c["status"] == "ok" for c in cells), [(c["backend"], c["reason"]) for c in cells]
    top1 = {(r["method"], r["backend"]): r["value"] for r in conn.execute(
        "SELECT method, backend, value FROM results WHERE metric = 'top1'")}
    for method in ("dense", "int8-dynamic"):
        # The same artifact scores the same on the target runtime as on onnxruntime-cpu.
        assert top1[(method, name)] == pytest.approx(top1[(method, "onnxruntime-cpu")], abs=1 / 360 + 1e-9)
    infos = [json.loads(r["info"]) for r in conn.execute(
        "SELECT m.info FROM measurements m JOIN cells c ON c.id = m.cell_id WHERE c.backend = ? "
        "AND m.metric = 'p50_ms'", (name,))]
    assert len(infos) == 4
    return infos


def test_wasm_suite_runs_in_node(harness_cli, suite_file, tmp_path):
    need(shutil.which("node") is not None and shutil.which("npm") is not None, "Node.js and npm are not installed")
    infos = run_suite(harness_cli, suite_file, tmp_path, '"wasm"', "wasm")
    assert all(i["timer"] == "process.hrtime.bigint (node)" and i["provider"] == "wasm" for i in infos)
    assert all(i["transport"] == "node" and i["emulated"] is False for i in infos)


def test_wasm_without_node_says_what_is_missing(monkeypatch):
    from harness_plugins.backends import wasm

    monkeypatch.setenv("PATH", "/nonexistent")
    ok, reason = wasm.available()
    assert not ok and "node and npm not found on PATH" in reason


def arm_root() -> Path | None:
    from harness_plugins.backends.arm import root_dir

    root = root_dir()
    return root if (root / ".harness-ready").is_file() else None


def test_arm_suite_runs_emulated(harness_cli, suite_file, tmp_path):
    root = arm_root()
    need(root is not None, "no emulated arm64 root: run 'harness setup arm' as root")
    infos = run_suite(harness_cli, suite_file, tmp_path,
                      f'{{ name = "arm", transport = "qemu", root = "{root}" }}', "arm")
    assert all(i["transport"] == "qemu" and i["emulated"] is True for i in infos)
    assert all(i["features"]["machine"] == "aarch64" and "asimddp" in i["features"] for i in infos)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A real sshd on 127.0.0.1 accepting one generated key for the current user."""
    need(Path("/usr/sbin/sshd").exists() and shutil.which("ssh-keygen") is not None, "openssh-server is not installed")
    need(os.geteuid() == 0, "sshd needs root to switch to the logged-in user")
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    port = _free_port()
    config = keys / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
                      f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPasswordAuthentication no\n"
                      "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\n"
                      f"UsePAM no\nPidFile {keys / 'sshd.pid'}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield {"port": port, "identity": str(keys / "client"), "known_hosts": str(keys / "known_hosts")}
    proc.terminate()
    proc.wait(10)


def test_arm_over_ssh_runs_on_the_remote_python(harness_cli, suite_file, tmp_path, sshd):
    # The "device" is this machine's sshd; its Python is this interpreter (it has onnxruntime).
    entry = (f'{{ name = "arm", transport = "ssh", host = "127.0.0.1", port = {sshd["port"]}, '
             f'identity = "{sshd["identity"]}", known_hosts = "{sshd["known_hosts"]}", python = "{sys.executable}" }}')
    infos = run_suite(harness_cli, suite_file, tmp_path, entry, "arm")
    assert all(i["transport"] == "ssh" and i["emulated"] is False for i in infos)


@pytest.fixture(scope="module")
def two_input_onnx(tmp_path_factory):
    """A model of two named int64 inputs (token ids and a mask) with dynamic batch and sequence axes."""
    import onnxruntime as ort
    import torch

    from harness.api import export_onnx

    class Pool(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(50, 4)

        def forward(self, input_ids, attention_mask):
            m = attention_mask.unsqueeze(-1).float()
            return (self.emb(input_ids) * m).sum(1) / m.sum(1)

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    example = {"input_ids": rng.integers(0, 50, (2, 6)), "attention_mask": np.ones((2, 6), dtype=np.int64)}
    path = export_onnx(Pool(), tmp_path_factory.mktemp("m2") / "m.onnx", (6,), example)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return path.read_bytes(), ref


def _check_named_int64(session, ref):
    rng = np.random.default_rng(1)
    feeds = []
    for t in (5, 9):  # two sequence lengths: the axis is dynamic
        ids = rng.integers(0, 50, (3, t))
        mask = (rng.random((3, t)) > 0.3).astype(np.int64)
        mask[:, 0] = 1
        feeds.append({"input_ids": ids, "attention_mask": mask})
    for feed in feeds:
        np.testing.assert_allclose(session.run(feed), ref.run(None, feed)[0], atol=1e-6)
    # Names that differ from the model's are matched by position.
    renamed = {"a": feeds[0]["input_ids"], "b": feeds[0]["attention_mask"]}
    np.testing.assert_allclose(session.run(renamed), ref.run(None, feeds[0])[0], atol=1e-6)
    result = session.time(feeds, FAST)
    assert len(result.samples_s) >= 5


def test_python_runner_takes_named_int64_inputs(two_input_onnx):
    model, ref = two_input_onnx
    session = RunnerSession([sys.executable, runner_files()["onnx_runner.py"]], model, 1)
    try:
        _check_named_int64(session, ref)
    finally:
        session.close()


def test_node_runner_takes_named_int64_inputs(two_input_onnx):
    need(shutil.which("node") is not None and shutil.which("npm") is not None, "node and npm are not on PATH")
    from harness_plugins.backends.wasm import ensure_installed

    model, ref = two_input_onnx
    where = ensure_installed()
    session = RunnerSession(["node", str(where / "runner.mjs")], model, 1, cwd=str(where))
    try:
        _check_named_int64(session, ref)
    finally:
        session.close()


PER_QUERY = TimingPlan(warmup_iters=3, warmup_s=0.0, min_samples=50, min_time_s=0.0)


def _check_per_query_rule(session):
    """A runner times every lenet5 call by itself, keeps block means when asked, and caps its samples."""
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    batches = [x[:1], x[1:2]]
    result = session.time(batches, PER_QUERY)
    assert result.info["sampling"] == "per query" and result.info["samples"] == "per query"
    assert result.inner_loops == 1 and len(result.samples_s) == result.info["samples_kept"] >= 50
    assert result.info["per_query_threshold_s"] == pytest.approx(
        20 * (result.info["timer_resolution_s"] + result.info["timer_overhead_s"]))
    assert result.info["call_estimate_s"] >= result.info["per_query_threshold_s"]
    block = session.time(batches, TimingPlan(**{**PER_QUERY.as_dict(), "sampling": "block"}))
    assert block.inner_loops > 1 and block.info["samples"] == f"block means of {block.inner_loops} calls"
    capped = session.time(batches, TimingPlan(**{**PER_QUERY.as_dict(), "min_samples": 200, "max_samples": 20}))
    assert len(capped.samples_s) == 20 and capped.info["samples_taken"] >= 200
    assert session.info["clock"]["resolution_s"] > 0 and session.info["clock"]["overhead_s"] >= 0


def test_python_runner_copied_without_the_harness_times_per_query(lenet_onnx, tmp_path):
    # The runner's files, copied to a folder as on a device, in a Python that cannot import the harness.
    for name, path in runner_files().items():
        shutil.copyfile(path, tmp_path / name)
    (tmp_path / "start.py").write_text(
        "import runpy, sys\nsys.modules['harness'] = None  # any 'import harness...' fails\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\nrunpy.run_path({str(tmp_path / 'onnx_runner.py')!r}, "
        "run_name='__main__')\n")
    session = RunnerSession([sys.executable, str(tmp_path / "start.py")], lenet_onnx[0], 1)
    try:
        _check_per_query_rule(session)
    finally:
        session.close()


def test_node_runner_follows_the_per_query_rule(lenet_onnx):
    need(shutil.which("node") is not None and shutil.which("npm") is not None, "node and npm are not on PATH")
    from harness_plugins.backends.wasm import ensure_installed

    where = ensure_installed()
    session = RunnerSession(["node", str(where / "runner.mjs")], lenet_onnx[0], 1, cwd=str(where))
    try:
        _check_per_query_rule(session)
    finally:
        session.close()
