"""Running a verifier on one instance, in a process of its own.

Every verifier, built-in or not, runs one instance per process, as VNN-COMP runs tools: a crash
or a hang costs one verdict, a process that outlives its time is killed (with its children: it
runs in a session of its own) and the verdict is ``timeout``, and tools with conflicting
dependencies each keep their own environment.

- A Python verifier (:attr:`harness.api.VerifierSpec.verify`) runs in ``python -m
  harness.verify.child``, which loads the plugins and writes a VNN-COMP result file.
- A tool (:attr:`harness.api.VerifierSpec.tool`, e.g. the ``vnncomp`` verifier) is called through
  VNN-COMP's scripts: ``prepare_instance.sh v1 CATEGORY ONNX VNNLIB`` (when present, untimed) and
  ``run_instance.sh v1 CATEGORY ONNX VNNLIB RESULT_FILE TIMEOUT``.

Both end in the same result file, read by :func:`harness.verify.verdicts.read_result_file`. A
verifier that fails to start, to load or to prepare, exits without an answer, or leaves an
unreadable result file gives the ``error`` verdict with the reason (its stderr's tail included).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.verify.verdicts import ERROR, TIMEOUT, Verdict, read_result_file

#: Seconds a verifier may run past its timeout (start-up, writing its answer) before it is killed.
GRACE_S = 10.0
#: VNN-COMP's script interface version argument.
TOOL_INTERFACE = "v1"


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the verifier's process group (the process and every child it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _tail(path: Path, n: int = 1500) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return text[-n:]


def _run(cmd: list[str], *, limit_s: float, workdir: Path, stem: str, stdin: str | None = None,
         cwd: Path | None = None) -> tuple[int | None, float]:
    """Run ``cmd`` with a wall-clock limit; ``(exit status or None when killed, seconds)``."""
    out, err = workdir / f"{stem}.stdout", workdir / f"{stem}.stderr"
    t0 = time.monotonic()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=fo, stderr=fe, cwd=str(cwd) if cwd else None, start_new_session=True)
        try:
            if stdin is not None:
                proc.stdin.write(stdin.encode())
                proc.stdin.close()
            code = proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return None, time.monotonic() - t0
        except BaseException:
            _kill_group(proc)
            raise
    return code, time.monotonic() - t0


def run_verifier(spec: Any, params: Mapping[str, Any], onnx_path: str | Path, vnnlib_path: str | Path,
                 timeout_s: float, *, workdir: str | Path, plugins_dir: str | None = None,
                 grace_s: float = GRACE_S) -> Verdict:
    """Run verifier ``spec`` (with ``params``) on one instance; never raises for the verifier's faults."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    result_file = workdir / "result.txt"
    result_file.unlink(missing_ok=True)
    onnx_path, vnnlib_path = Path(onnx_path).resolve(), Path(vnnlib_path).resolve()
    if spec.tool is not None:
        return _run_tool(spec, params, onnx_path, vnnlib_path, timeout_s, workdir, result_file, grace_s)
    request = {"verifier": spec.name, "params": dict(params), "onnx": str(onnx_path), "vnnlib": str(vnnlib_path),
               "timeout_s": timeout_s, "result": str(result_file), "plugins_dir": plugins_dir,
               "started": time.time()}
    try:
        code, took = _run([sys.executable, "-m", "harness.verify.child"], limit_s=timeout_s + grace_s,
                          workdir=workdir, stem="child", stdin=json.dumps(request))
    except OSError as exc:
        return Verdict(ERROR, error=f"the verifier process failed to start: {type(exc).__name__}: {exc}")
    if code is None:
        return Verdict(TIMEOUT, time_s=took, raw="(killed)",
                       error=f"killed {grace_s:g} s after its {timeout_s:g} s timeout")
    verdict = read_result_file(result_file)
    verdict.time_s = took
    sidecar = workdir / "result.json"
    if sidecar.is_file():
        try:
            extra = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            return Verdict(ERROR, time_s=took, error=f"unreadable result sidecar {sidecar.name}: {exc}")
        verdict.info = extra.get("info") or {}
        verdict.error = verdict.error if extra.get("error") is None else extra["error"]
    if code != 0:
        # A process that died without an answer (its interpreter or the harness failed to import).
        _note_exit(verdict, f"verifier process exited with status {code}", _tail(workdir / "child.stderr"))
    return verdict


def _note_exit(verdict: Verdict, what: str, stderr: str) -> None:
    """Say in ``verdict.error`` how a process that exited non-zero ended, with the tail of its stderr."""
    if verdict.result == ERROR:
        verdict.error = f"{what}: {stderr or verdict.error}"
    elif verdict.error is None:
        verdict.error = f"{what}: {stderr}"


def _run_tool(spec: Any, params: Mapping[str, Any], onnx_path: Path, vnnlib_path: Path, timeout_s: float,
              workdir: Path, result_file: Path, grace_s: float) -> Verdict:
    """VNN-COMP's two scripts: prepare (untimed, bounded by ``prepare_timeout_s``), then run."""
    try:
        folder = Path(spec.tool(params)).resolve()
    except Exception as exc:  # noqa: BLE001 - the plugin's fault: no answer, with the reason
        return Verdict(ERROR, error=f"verifier {spec.name}: its tool folder: {type(exc).__name__}: {exc}")
    category = str(params.get("category") or onnx_path.parent.name)
    prepare = folder / "prepare_instance.sh"
    if prepare.is_file():
        code, took = _run(["bash", str(prepare), TOOL_INTERFACE, category, str(onnx_path), str(vnnlib_path)],
                          limit_s=float(params.get("prepare_timeout_s", 300.0)), workdir=workdir, stem="prepare",
                          cwd=folder)
        if code != 0:
            why = "timed out" if code is None else f"exited with status {code}"
            return Verdict(ERROR, error=f"prepare_instance.sh {why}: {_tail(workdir / 'prepare.stderr')}",
                           info={"prepare_s": round(took, 3)})
    cmd = ["bash", str(folder / "run_instance.sh"), TOOL_INTERFACE, category, str(onnx_path), str(vnnlib_path),
           str(result_file), f"{timeout_s:g}"]
    code, took = _run(cmd, limit_s=timeout_s + grace_s, workdir=workdir, stem="run", cwd=folder)
    if code is None:
        return Verdict(TIMEOUT, time_s=took, raw="(killed)",
                       error=f"run_instance.sh killed {grace_s:g} s after its {timeout_s:g} s timeout")
    verdict = read_result_file(result_file)
    verdict.time_s = took
    verdict.info = {"tool": str(folder), "category": category}
    if code != 0:
        _note_exit(verdict, f"run_instance.sh exited with status {code}", _tail(workdir / "run.stderr"))
    return verdict
