"""The ray executor: the same cells on a Ray cluster, with backends mapped to the nodes that have them.

The harness grows no scheduler of its own. Each cell becomes a Ray task that runs it exactly as
the local executor does, in an isolated worker process with the time limit (so exceptions, hangs
and crashes become ``failed`` records); Ray places the task on a node that offers what the cell's
backend needs (:attr:`harness.api.BackendSpec.resources`: ``{"GPU": 1}``, ``{"wasm": 1}``...).

- **Artifacts are built once**: one build task per artifact, whose files travel to the cells'
  nodes through Ray's object store (no shared filesystem needed).
- **Timing cells have their node to themselves**: every node declares one unit of the custom
  resource ``harness_node``; a cell of an exclusive suite (latency) takes the whole unit, any
  other cell a quarter.
- **Dense baselines first**: the cells that others compare with run (and are recorded) before
  the rest are submitted.
- **A Ray worker that dies** is retried by Ray up to ``max_retries`` times, then the cell is
  recorded ``failed`` with the reason.
- **Cells no node can run** are recorded ``skipped: no node offers ...`` after a bounded wait
  (nodes may still be joining), never left pending.
- The driver stays the only writer to SQLite: results come back to it and it records them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.core.errors import MissingDependency
from harness.run.local import LocalExecutor, note_broken, settled

NODE_RESOURCE = "harness_node"
SHARED_FRACTION = 0.25


def node_resources() -> dict[str, float]:
    """The custom resources this machine offers when the harness starts a local Ray instance."""
    import shutil

    res = {NODE_RESOURCE: 1.0}
    if shutil.which("node") and shutil.which("npm"):
        res["wasm"] = 1.0
    import platform

    if platform.machine() in ("aarch64", "arm64"):
        res["aarch64"] = 1.0
    try:
        from harness_plugins.backends.arm import root_dir  # first-party: the emulated root, if prepared

        if (root_dir() / ".harness-ready").is_file():
            res["arm_qemu"] = 1.0
    except ImportError:
        pass
    return res


_LOCAL: dict[str, LocalExecutor] = {}


def _run_on_node(task: dict, config: dict, timeout_s: float, artifact: dict | None) -> dict:
    """Inside a Ray worker: unpack the shipped artifact into this node's cache, run the cell isolated."""
    import platform
    import socket

    if artifact is not None:
        _unpack(artifact, Path(task["cache_dir"]))
        task = dict(task, artifact_key=artifact["key"])
    # One isolating executor per Ray worker: its cell process (torch imported once) serves many cells.
    executor = _LOCAL.setdefault("executor", LocalExecutor(config, timeout_s=timeout_s))
    result = executor.run(task)
    result.setdefault("info", {})["executor"] = {"kind": "ray", "node": socket.gethostname(),
                                                 "machine": platform.machine(), "pid": os.getpid()}
    return result


def _build_on_node(task: dict, config: dict, timeout_s: float) -> dict:
    """Inside a Ray worker: build (or find) the cell's artifact; return its files for the object store."""
    executor = _LOCAL.setdefault("executor", LocalExecutor(config, timeout_s=timeout_s))
    result = executor.run(dict(task, build_only=True))
    if result["status"] != "ok":
        return {"failed": result}
    key = result["info"]["artifact_key"]
    folder = Path(task["cache_dir"]) / "artifacts" / key
    return {"key": key, "files": {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}}


def _unpack(artifact: dict, cache_dir: Path) -> None:
    import shutil
    import tempfile

    final = cache_dir / "artifacts" / artifact["key"]
    if (final / "artifact.json").is_file():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{artifact['key']}.", dir=final.parent))
    # artifact.json last: its presence is what marks a complete artifact.
    for name in sorted(artifact["files"], key=lambda n: n == "artifact.json"):
        (tmp / name).write_bytes(artifact["files"][name])
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


class RayExecutor:
    """Runs cells as Ray tasks; see the module docstring for what it guarantees."""

    def __init__(self, config: dict, *, host: Any, timeout_s: float, address: str | None = None,
                 max_retries: int = 2, wait_for_nodes_s: float = 10.0):
        try:
            import ray
        except ImportError:
            raise MissingDependency("the ray executor needs Ray: pip install 'compression-harness[ray]'") from None
        self.ray = ray
        self.config = config
        self.host = host
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.wait_for_nodes_s = wait_for_nodes_s
        self.started_here = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # A local instance for this run: this machine's cores and what it offers.
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                ray.init(num_cpus=os.cpu_count(), resources=node_resources(), include_dashboard=False,
                         log_to_driver=False)
                self.started_here = True
        self._run = ray.remote(_run_on_node)
        self._build = ray.remote(_build_on_node)

    # ------------------------------------------------------------------ placement

    def _needs(self, cell: Any) -> dict[str, float]:
        suite = self.host.registry.get("suite", cell.suite).spec
        needs: dict[str, float] = {NODE_RESOURCE: 1.0 if suite.exclusive else SHARED_FRACTION}
        if cell.backend is not None:
            backend = self.host.registry.get("backend", cell.backend.name).spec
            needs.update(backend.resources(cell.backend.params) or {})
        return needs

    def _unplaceable(self, needs: dict[str, float]) -> dict[str, float]:
        """What no single node offers: ``{}`` when some node has everything ``needs`` asks for."""
        missing = needs
        for node in self.ray.nodes():
            if not node.get("Alive"):
                continue
            have = node.get("Resources", {})
            lacking = {k: v for k, v in needs.items() if have.get(k, 0) < v}
            if not lacking:
                return {}
            if len(lacking) < len(missing):
                missing = lacking
        return missing

    def _place(self, cells: list) -> tuple[list, list]:
        """Split cells into placeable ones and (cell, reason) for those no node can run."""
        deadline = time.monotonic() + self.wait_for_nodes_s
        while True:
            placeable, unplaceable = [], []
            for cell in cells:
                missing = self._unplaceable(self._needs(cell))
                (unplaceable if missing else placeable).append((cell, missing))
            if not unplaceable or time.monotonic() >= deadline:
                break
            time.sleep(1.0)  # nodes may still be joining the cluster
        skipped = [(cell, f"no node offers {missing} (waited {self.wait_for_nodes_s:g} s for one to join)")
                   for cell, missing in unplaceable]
        return [c for c, _ in placeable], skipped

    def _options(self, cell: Any) -> dict:
        needs = self._needs(cell)
        gpus = needs.pop("GPU", 0)
        cpus = needs.pop("CPU", 1)
        return {"num_cpus": cpus, "num_gpus": gpus, "resources": needs, "max_retries": self.max_retries,
                "retry_exceptions": False}

    # ------------------------------------------------------------------ execution

    def execute(self, cells: list, make_task: Callable[[Any], dict]) -> Iterator[tuple[Any, dict]]:
        """Build each artifact once, then run dense baselines, then the rest; yield results as they come."""
        from harness.plan.suitefile import BASELINE_METHOD

        broken: dict[str, dict] = {}
        runnable = []
        for cell in cells:
            result = settled(cell, broken)
            if result is not None:
                yield cell, result
            else:
                runnable.append(cell)
        runnable, skipped = self._place(runnable)
        for cell, reason in skipped:
            yield cell, {"status": "skipped", "reason": reason}

        artifacts = self._build_all(runnable, make_task, broken)
        baselines = [c for c in runnable if c.method.name == BASELINE_METHOD]
        others = [c for c in runnable if c.method.name != BASELINE_METHOD]
        for wave in (baselines, others):
            yield from self._run_wave(wave, make_task, artifacts, broken)

    def _build_all(self, cells: list, make_task: Callable, broken: dict) -> dict[str, Any]:
        """One build task per artifact; their files go to the object store. A failed build marks
        the artifact broken, so its cells are recorded failed without running."""
        groups: dict[str, Any] = {}
        for cell in cells:
            # A verification benchmark is generated (seeded) where its cells run: nothing to ship.
            if not getattr(cell, "benchmark", False):
                groups.setdefault(cell.artifact_group, cell)
        refs = {group: self._build.options(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False,
                                           resources={NODE_RESOURCE: SHARED_FRACTION})
                .remote(make_task(cell), self.config, self.timeout_s) for group, cell in groups.items()}
        artifacts: dict[str, Any] = {}
        for group, ref in refs.items():
            try:
                out = self.ray.get(ref)
            except Exception as exc:  # the Ray worker died more often than it may be retried
                broken[group] = {"status": "failed", "stage": "artifact", "error_type": type(exc).__name__,
                                 "reason": f"artifact build: Ray worker lost after {self.max_retries} "
                                           f"retries: {_first_line(exc)}"}
                continue
            if "failed" in out:
                broken[group] = out["failed"]
            else:
                artifacts[group] = self.ray.put(out)
        return artifacts

    def _run_wave(self, cells: list, make_task: Callable, artifacts: dict, broken: dict) -> Iterator[tuple]:
        pending: dict[Any, Any] = {}
        for cell in cells:
            result = settled(cell, broken)
            if result is not None:
                yield cell, result
                continue
            ref = self._run.options(**self._options(cell)).remote(make_task(cell), self.config, self.timeout_s,
                                                                   artifacts.get(cell.artifact_group))
            pending[ref] = cell
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            cell = pending.pop(done[0])
            try:
                result = self.ray.get(done[0])
            except Exception as exc:  # the Ray worker died more often than it may be retried
                result = {"status": "failed", "stage": "suite", "error_type": type(exc).__name__,
                          "reason": f"Ray worker lost after {self.max_retries} retries: {_first_line(exc)}"}
            note_broken(cell, result, broken)
            yield cell, result

    def close(self) -> None:
        """Shut down the local Ray instance this executor started (an existing cluster is left alone)."""
        if self.started_here:
            self.ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
