"""The ``wasm`` backend: onnxruntime-web's WebAssembly execution provider, run by Node.js.

The runner (``wasm_runner/runner.mjs``) speaks the harness runner protocol
(:class:`harness.api.RunnerSession`) and times inside Node with the same plan as every backend, so IPC never
enters a latency figure. onnxruntime-web is installed with npm, at the version pinned in
``wasm_runner/package.json``, into the harness cache on first use (or by ``harness setup wasm``).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.api import CPU_CORES, Artifact, BackendSpec, Param, RunnerSession, Skip, cache_dir, hookimpl

RUNNER_DIR = Path(__file__).with_name("wasm_runner")
PACKAGE = json.loads((RUNNER_DIR / "package.json").read_text())
ORT_WEB_VERSION = PACKAGE["dependencies"]["onnxruntime-web"]


def install_dir(base: Path | None = None) -> Path:
    """Where the runner and its pinned onnxruntime-web live."""
    return (base or cache_dir()) / "wasm" / f"onnxruntime-web-{ORT_WEB_VERSION}"


def _missing_tools() -> str | None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return (f"{' and '.join(missing)} not found on PATH: install Node.js 18 or newer with npm "
                "(e.g. Debian's nodejs and npm packages)")
    return None


def ensure_installed(base: Path | None = None) -> Path:
    """Install the runner and onnxruntime-web once (under a lock, atomically); return its folder."""
    target = install_dir(base)
    marker = target / "node_modules" / "onnxruntime-web" / "package.json"
    if marker.is_file() and (target / "runner.mjs").read_bytes() == (RUNNER_DIR / "runner.mjs").read_bytes():
        return target
    problem = _missing_tools()
    if problem:
        raise Skip(problem)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():  # installed while we waited; refresh the runner script only
            shutil.copyfile(RUNNER_DIR / "runner.mjs", target / "runner.mjs")
            return target
        tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=target.parent))
        for name in ("package.json", "runner.mjs"):
            shutil.copyfile(RUNNER_DIR / name, tmp / name)
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=tmp,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"npm install onnxruntime-web@{ORT_WEB_VERSION} failed: {proc.stderr.strip()[-1500:]}")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    return target


def setup(base: Path) -> str:
    """``harness setup wasm``: install the pinned onnxruntime-web now."""
    where = ensure_installed(base)
    return f"onnxruntime-web {ORT_WEB_VERSION} ready in {where}"


def open_session(artifact: Artifact, params: Mapping[str, Any]) -> Any:
    """Start a Node runner on the artifact's ONNX model."""
    where = ensure_installed()
    return RunnerSession(["node", str(where / "runner.mjs")], artifact.file("onnx").read_bytes(),
                         int(params["threads"]), cwd=str(where), info={"transport": "node", "emulated": False})


def available() -> tuple[bool, str]:
    """Node.js and npm are needed (the package itself is installed on first use)."""
    problem = _missing_tools()
    return (False, problem) if problem else (True, "")


def fingerprint(params: Mapping[str, Any]) -> dict:
    """Node's version and the pinned onnxruntime-web."""
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {"node": node, "onnxruntime-web": ORT_WEB_VERSION, "threads": int(params["threads"]),
            "execution_provider": "wasm"}


WASM = BackendSpec(
    name="wasm", session=open_session, accepts=("onnx",), available=available, fingerprint=fingerprint,
    setup=setup,
    resources=lambda params: {"wasm": 1},
    node_resources=lambda cache_dir: {"wasm": 1} if shutil.which("node") and shutil.which("npm") else {},
    params=(Param("threads", int, default=1, min=1, max=CPU_CORES,
                  help="WebAssembly threads (ort.env.wasm.numThreads)"),),
    description=f"onnxruntime-web {ORT_WEB_VERSION}, wasm execution provider, in Node.js; timed inside Node",
)


@hookimpl
def harness_register_backends(register):
    """Register ``wasm``."""
    register(WASM)
