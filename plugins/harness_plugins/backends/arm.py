"""The ``arm`` backend: onnxruntime on aarch64, natively, over ssh, or under qemu emulation.

Transports (parameter ``transport``; ``auto`` picks the first that fits):

- ``native``: this machine is aarch64; the runner runs here with this interpreter.
- ``ssh``: a remote aarch64 device (``host``, ``user``, ``port``, ``python``, ``identity``): the
  runner files are copied over ssh and the runner started there; the model travels in the
  protocol's ``load`` request, and timing happens on the device.
- ``qemu``: an arm64 Debian root (debootstrap) with Python and onnxruntime's aarch64 wheels,
  entered with chroot while the kernel runs aarch64 binaries through qemu-user (binfmt_misc).
  ``harness setup arm`` prepares it (as root). Outputs and accuracy are real; latency under
  emulation is not a hardware figure: it is recorded with ``emulated = true`` and flagged.

Every transport runs :mod:`harness.measure.programs.onnx_runner` through the runner protocol
(:class:`harness.api.RunnerSession`), so the session is the same object whatever carries it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.api import Artifact, BackendSpec, Param, RunnerSession, Skip, cache_dir, hookimpl, runner_files

TRANSPORTS = ("auto", "native", "ssh", "qemu")
SUITE = "bookworm"
ROOT_PYTHON = "3.11"  # bookworm's python3
#: Platforms for onnxruntime's aarch64 wheels; naming only manylinux2014 picks a release too old for opset 20.
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux2014_aarch64")
WHEELS = ("onnxruntime", "numpy")
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
SITE = "/opt/harness/site"
RUNNER = "/opt/harness/runner"
#: No ARM device has more cores than this (the largest aarch64 servers have 192): a bound that stops a
#: typo such as 100000, when the device (remote, or emulated) cannot be asked at validation.
MAX_DEVICE_THREADS = 256


def is_aarch64() -> bool:
    """Whether this machine is an aarch64 host."""
    return platform.machine() in ("aarch64", "arm64")


ROOT_ENV = "HARNESS_ARM_ROOT"


def root_dir(base: Path | None = None) -> Path:
    """The emulated root's folder: ``$HARNESS_ARM_ROOT``, else in the cache.

    The variable lets a machine keep one root (282 MB, minutes of debootstrap) across caches
    that come and go, as CI's do.
    """
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV])
    return (base or cache_dir()) / "arm" / f"debian-{SUITE}-arm64"


def pick_transport(params: Mapping[str, Any]) -> str:
    """``auto``: native on aarch64, else ssh when a host is configured, else qemu."""
    if params["transport"] != "auto":
        return params["transport"]
    if is_aarch64():
        return "native"
    return "ssh" if params["host"] else "qemu"


# ------------------------------------------------------------------ qemu: the emulated root


def _apt_mirror() -> list[str]:
    """The Debian mirror this machine's apt uses (so debootstrap goes where apt goes); ``[]``: its default."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return [words[1]]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[1]:
                return [w for w in words[1:] if "://" in w][:1]
    return []


def ensure_binfmt() -> None:
    """Make the kernel run aarch64 binaries through qemu-user (needs root the first time after boot)."""
    if (BINFMT_DIR / "qemu-aarch64").exists():
        return
    if not BINFMT_CONF.exists():
        raise RuntimeError("qemu-user-static is not installed (apt-get install qemu-user-static)")
    if not (BINFMT_DIR / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], check=True,
                       capture_output=True)
    (BINFMT_DIR / "register").write_text(BINFMT_CONF.read_text().strip())


def _run(cmd: list[str], what: str, timeout: float = 1800, **kwargs: Any) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(cmd[:3])} ...): {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc.stdout


def setup(base: Path) -> str:
    """``harness setup arm``: prepare the emulated arm64 root (idempotent; reuses what is cached)."""
    if is_aarch64():
        return "this machine is aarch64: the arm backend runs natively, nothing to prepare"
    root = root_dir(base)
    ready = root / ".harness-ready"
    t0 = time.perf_counter()
    if ready.is_file() and (root / RUNNER.lstrip("/") / "onnx_runner.py").is_file():
        ensure_binfmt()
        _install_runner(root)
        return f"arm64 root ready in {root} (from cache, {time.perf_counter() - t0:.1f} s)"
    if os.geteuid() != 0:
        raise RuntimeError("preparing the emulated root needs root (debootstrap, chroot, binfmt_misc)")
    for tool, package in (("debootstrap", "debootstrap"), ("chroot", "coreutils")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: apt-get install {package}")
    ensure_binfmt()
    steps = {}
    if not (root / "usr" / "bin" / "python3").exists():
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        _run(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3", SUITE, str(root),
              *_apt_mirror()], "debootstrap of the arm64 root")
        steps["debootstrap_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    wheels = root.parent / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
    site = root / SITE.lstrip("/")
    if site.exists():
        shutil.rmtree(site)
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
          "--python-version", ROOT_PYTHON, *platform_args, "--target", str(site), "--find-links", str(wheels),
          *WHEELS], "pip install of onnxruntime's aarch64 wheels")
    steps["wheels_s"] = round(time.perf_counter() - t, 1)
    _install_runner(root)
    version = _run(["chroot", str(root), "/usr/bin/env", f"PYTHONPATH={SITE}", "/usr/bin/python3", "-c",
                    "import onnxruntime, platform; print(onnxruntime.__version__, platform.machine())"],
                   "the emulated python's onnxruntime check", timeout=300).strip()
    ready.write_text(version + "\n")
    return (f"arm64 root ready in {root}: onnxruntime {version} ({time.perf_counter() - t0:.1f} s; "
            + ", ".join(f"{k} {v}" for k, v in steps.items()) + ")")


def _install_runner(root: Path) -> None:
    target = root / RUNNER.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    for name, path in runner_files().items():
        shutil.copyfile(path, target / name)


# ------------------------------------------------------------------ sessions


def _ssh_base(params: Mapping[str, Any]) -> list[str]:
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-p", str(params["port"])]
    if params["identity"]:
        cmd += ["-i", params["identity"]]
    if params["known_hosts"]:
        cmd += ["-o", f"UserKnownHostsFile={params['known_hosts']}"]
    return cmd + [f"{params['user']}@{params['host']}" if params["user"] else params["host"]]


def _ssh_install(params: Mapping[str, Any]) -> str:
    """Copy the runner files to the device (through ssh alone: no sftp needed); return their folder."""
    files = runner_files()
    digest = hashlib.sha256(b"".join(Path(p).read_bytes() for p in files.values())).hexdigest()[:12]
    remote = f"/tmp/harness-runner-{digest}"
    for name, path in files.items():
        _run([*_ssh_base(params), f"mkdir -p {remote} && cat > {remote}/{name}"], f"copying {name} over ssh",
             timeout=120, input=Path(path).read_text())
    return remote


def runner_command(params: Mapping[str, Any], transport: str) -> list[str]:
    """The command that starts the onnxruntime runner over ``transport``."""
    if transport == "native":
        if not is_aarch64():
            raise Skip(f"transport native needs an aarch64 host; this one is {platform.machine()}")
        return [sys.executable, runner_files()["onnx_runner.py"]]
    if transport == "ssh":
        if not params["host"]:
            raise RuntimeError("transport ssh needs a host (backend parameter host = \"...\")")
        remote = _ssh_install(params)
        return [*_ssh_base(params), params["python"], f"{remote}/onnx_runner.py"]
    root = Path(params["root"]) if params["root"] else root_dir()
    if not (root / ".harness-ready").is_file():
        raise Skip(f"no emulated arm64 root at {root}: run 'harness setup arm' (as root) first")
    ensure_binfmt()
    _install_runner(root)  # the runner in the root must speak this harness's protocol version
    # No /sys in the chroot: onnxruntime's aarch64 build segfaults under qemu when it can read the host's.
    return ["chroot", str(root), "/usr/bin/env", f"PYTHONPATH={SITE}:{RUNNER}", "/usr/bin/python3",
            f"{RUNNER}/onnx_runner.py"]


def open_session(artifact: Artifact, params: Mapping[str, Any]) -> Any:
    """Start the runner over the chosen transport on the artifact's ONNX model."""
    transport = pick_transport(params)
    return RunnerSession(runner_command(params, transport), artifact.file("onnx").read_bytes(), int(params["threads"]),
                         info={"transport": transport, "emulated": transport == "qemu"})


def available() -> tuple[bool, str]:
    """Available when some transport can work here (each session still checks its own)."""
    if is_aarch64():
        return True, ""
    if BINFMT_CONF.exists() or shutil.which("ssh"):
        return True, ""
    return False, "not an aarch64 host, qemu-user-static is not installed and there is no ssh client"


def fingerprint(params: Mapping[str, Any]) -> dict:
    """The transport; the device's CPU features come from the runner (session info ``features``)."""
    transport = pick_transport(params)
    out = {"transport": transport, "emulated": transport == "qemu", "threads": int(params["threads"])}
    if transport == "ssh":
        out["host"] = params["host"]
    if transport == "qemu":
        out["root"] = str(Path(params["root"]) if params["root"] else root_dir())
    return out


def resources(params: Mapping[str, Any]) -> dict:
    """Ray resources: an aarch64 node natively, a node with the emulated root for qemu, any for ssh."""
    transport = pick_transport(params)
    return {"native": {"aarch64": 1}, "qemu": {"arm_qemu": 1}}.get(transport, {})


def node_resources(base: Path) -> dict:
    """What this machine offers the arm backend's cells on Ray: ``aarch64`` on an aarch64 CPU (the native
    transport), ``arm_qemu`` once the emulated root is prepared under ``base`` (the qemu transport)."""
    offers = {"aarch64": 1} if is_aarch64() else {}
    if (root_dir(base) / ".harness-ready").is_file():
        offers["arm_qemu"] = 1
    return offers


ARM = BackendSpec(
    name="arm", session=open_session, accepts=("onnx",), available=available, fingerprint=fingerprint,
    setup=setup, resources=resources, node_resources=node_resources,
    params=(
        Param("transport", str, default="auto", choices=TRANSPORTS,
              help="auto: native on aarch64, else ssh when host is set, else qemu"),
        Param("threads", int, default=1, min=1, max=MAX_DEVICE_THREADS,
              help="onnxruntime intra-op threads on the device (its cores are unknown until it answers)"),
        Param("host", str, default="", grid=False, help="ssh: the aarch64 device"),
        Param("port", int, default=22, min=1, max=65535, grid=False, help="ssh: port"),
        Param("user", str, default="", grid=False, help="ssh: user (default: ssh's)"),
        Param("python", str, default="python3", grid=False,
              help="ssh: the device's Python, with numpy and onnxruntime installed"),
        Param("identity", str, default="", grid=False, path="file", help="ssh: private key file"),
        Param("known_hosts", str, default="", grid=False, path="new",
              help="ssh: known-hosts file, created by ssh if absent (default: ssh's)"),
        Param("root", str, default="", grid=False, path="folder",
              help="qemu: the emulated root (default: in the cache)"),
    ),
    description="onnxruntime on aarch64: native, over ssh on a device, or emulated with qemu-user "
                "(latency under emulation is flagged, never ranked)",
)


@hookimpl
def harness_register_backends(register):
    """Register ``arm``."""
    register(ARM)
