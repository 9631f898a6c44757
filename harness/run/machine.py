"""Machine fingerprint and provenance, stored with every run.

Read from /proc and the standard library only (no heavy imports); library
versions come from installed distribution metadata.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from harness.core.identity import digest
from harness.measure.timing import measure_clock

LIBRARIES = ("torch", "onnxruntime", "onnx", "numpy", "scikit-learn", "pluggy", "sqlite-utils")


def _cpuinfo() -> dict:
    info: dict = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and "model" not in info:
            info["model"] = value
        elif key in ("flags", "Features") and "flags" not in info:
            info["flags"] = sorted(value.split())
    return info


def _meminfo_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def gpus() -> list[dict]:
    """NVIDIA GPUs as ``nvidia-smi`` reports them (name, driver, memory, CUDA version); ``[]`` without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    listing = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                    "--format=csv,noheader,nounits"])
    if not listing:
        return []
    header = _run(["nvidia-smi"]) or ""
    cuda = None
    if "CUDA Version:" in header:
        cuda = header.split("CUDA Version:", 1)[1].split()[0].strip("|")
    out = []
    for line in listing.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            out.append({"name": parts[0], "driver": parts[1], "memory_mib": parts[2], "cuda": cuda})
    return out


def node_version() -> str | None:
    """``node --version`` when Node.js is on PATH (the WASM backends run there)."""
    return _run(["node", "--version"]) if shutil.which("node") else None


def library_versions() -> dict:
    """Installed versions of the libraries that shape a measurement."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def fingerprint() -> dict:
    """What the machine is; ``hash`` covers the parts that change a timing.

    Hostname, kernel release and the frequency governor are recorded but not hashed: two
    identical machines (or one machine after a kernel update) compare as the same machine. Nor is
    ``clock``, the measured resolution and overhead of ``time.perf_counter_ns`` (back-to-back reads,
    :func:`harness.measure.timing.measure_clock`): it varies a little from run to run.
    """
    cpu = _cpuinfo()
    flags = cpu.pop("flags", [])
    fp = {
        "cpu_model": cpu.get("model") or platform.processor() or platform.machine(),
        "cpu_flags": flags,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": _meminfo_bytes(),
        "machine": platform.machine(),
        "os": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "cpu_governor": _governor(),
        "gpus": gpus(),
        "node": node_version(),
        "hostname": platform.node(),
        "clock": {"name": "time.perf_counter_ns", **measure_clock()},
    }
    stable = {k: v for k, v in fp.items() if k not in ("hostname", "kernel", "cpu_governor", "clock")}
    fp["hash"] = digest(stable)
    return fp


def git_revision(where: str | os.PathLike = ".") -> str | None:
    """``git describe``-style revision of the folder (with ``-dirty``), or ``None`` outside git."""
    try:
        out = subprocess.run(["git", "-C", str(where), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
