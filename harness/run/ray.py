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
- **Dense baselines first**: the driver hands over the cells that others compare with, and records
  them, before it hands over the rest (with the baselines' values in their tasks).
- **A Ray worker that dies** is retried by Ray up to ``max_retries`` times, then the cell is
  recorded ``failed`` with the reason.
- **Cells no node can run** are recorded ``skipped: no node offers ...`` after a bounded wait
  (nodes may still be joining), never left pending.
- The driver stays the only writer to SQLite: results come back to it and it records them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import MissingDependency, exception_text
from harness.run.local import LocalExecutor
from harness.run.task import BrokenArtifacts, CellResult, CellTask

NODE_RESOURCE = "harness_node"
SHARED_FRACTION = 0.25


def node_resources(host: Any, cache_dir: Path) -> dict[str, float]:
    """The custom resources this machine offers when the harness starts a local Ray instance.

    Besides the harness's own node marker, each backend adds what it knows this machine offers it
    (:attr:`harness.api.BackendSpec.node_resources`: ``wasm`` offers ``wasm`` where Node.js and npm are
    installed, ``arm`` offers ``aarch64`` on an aarch64 CPU and ``arm_qemu`` once its emulated root is
    prepared in ``cache_dir``). The host names no backend's resource.
    """
    res = {NODE_RESOURCE: 1.0}
    for spec in host.registry.specs("backend"):
        offers = spec.node_resources
        if offers is not None:
            res.update({name: float(amount) for name, amount in (offers(cache_dir) or {}).items()})
    return res


_LOCAL: dict[str, LocalExecutor] = {}


def _node_executor(config: dict, timeout_s: float) -> LocalExecutor:
    # One isolating executor per Ray worker: its cell process (torch imported once) serves many cells,
    # in a session of its own with its output captured, exactly as on the local executor.
    if "executor" not in _LOCAL:
        import atexit

        _LOCAL["executor"] = LocalExecutor(config, timeout_s=timeout_s)
        atexit.register(_LOCAL["executor"].close)  # what its cells left behind ends with this Ray worker
    return _LOCAL["executor"]


def _run_on_node(task: CellTask, config: dict, timeout_s: float, artifact: dict | None) -> CellResult:
    """Inside a Ray worker: unpack the shipped artifact into this node's cache, run the cell isolated."""
    import platform
    import socket

    if artifact is not None:
        _unpack(artifact, Path(task.cache_dir))
        task = dataclasses.replace(task, artifact_key=artifact["key"])
    result = _node_executor(config, timeout_s).run_one(task)
    result.executor = {"kind": "ray", "node": socket.gethostname(), "machine": platform.machine(),
                       "pid": os.getpid()}
    return result


def _build_on_node(task: CellTask, config: dict, timeout_s: float) -> dict:
    """Inside a Ray worker: build (or find) the cell's artifact; return its files for the object store."""
    result = _node_executor(config, timeout_s).run_one(dataclasses.replace(task, build_only=True))
    if result.status != "ok":
        return {"failed": result}
    key = result.artifact_key
    folder = Path(task.cache_dir) / "artifacts" / key
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

    def __init__(self, config: dict, *, host: Any, timeout_s: float, cache_dir: Path, address: str | None = None,
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
        self._broken = BrokenArtifacts()
        self._artifacts: dict[str, Any] = {}  # artifact group -> its files in the object store
        self._place_deadline: float | None = None
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # A local instance for this run: this machine's cores and what it offers.
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                ray.init(num_cpus=os.cpu_count(), resources=node_resources(host, cache_dir), include_dashboard=False,
                         log_to_driver=False)
                self.started_here = True
        self._run = ray.remote(_run_on_node)
        self._build = ray.remote(_build_on_node)

    # ------------------------------------------------------------------ placement

    def _needs(self, task: CellTask) -> dict[str, float]:
        suite = self.host.registry.get("suite", task.suite).spec
        needs: dict[str, float] = {NODE_RESOURCE: 1.0 if suite.exclusive else SHARED_FRACTION}
        backend = task.cell.get("backend")
        if backend is not None:
            spec = self.host.registry.get("backend", backend["name"]).spec
            needs.update(spec.resources(backend["params"]) or {})
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

    def _place(self, tasks: list[CellTask]) -> tuple[list[CellTask], list[CellResult]]:
        """Split tasks into placeable ones and ``skipped`` results for those no node can run.

        The wait for nodes to join is bounded once per executor, however many batches of tasks it runs.
        """
        if self._place_deadline is None:
            self._place_deadline = time.monotonic() + self.wait_for_nodes_s
        while True:
            placeable, unplaceable = [], []
            for task in tasks:
                missing = self._unplaceable(self._needs(task))
                (unplaceable if missing else placeable).append((task, missing))
            if not unplaceable or time.monotonic() >= self._place_deadline:
                break
            time.sleep(1.0)  # nodes may still be joining the cluster
        skipped = [CellResult(task.cell_key, "skipped",
                              reason=f"no node offers {missing} (waited {self.wait_for_nodes_s:g} s for one to join)")
                   for task, missing in unplaceable]
        return [t for t, _ in placeable], skipped

    def _options(self, task: CellTask) -> dict:
        needs = self._needs(task)
        gpus = needs.pop("GPU", 0)
        cpus = needs.pop("CPU", 1)
        return {"num_cpus": cpus, "num_gpus": gpus, "resources": needs, "max_retries": self.max_retries,
                "retry_exceptions": False}

    # ------------------------------------------------------------------ execution

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]:
        """Build each artifact once, then run the tasks all at once; yield results as they come.

        The driver hands dense baselines over first, as a batch of their own, and the rest once
        those are recorded; artifacts built for one batch are reused by the next.
        """
        runnable = []
        for task in tasks:
            result = self._broken.settled(task)
            if result is not None:
                yield result
            else:
                runnable.append(task)
        runnable, skipped = self._place(runnable)
        yield from skipped
        self._build_all(runnable)
        yield from self._run_all(runnable)

    def _build_all(self, tasks: list[CellTask]) -> None:
        """One build task per artifact not built yet; their files go to the object store. A failed build
        marks the artifact broken, so its cells are recorded failed without running."""
        groups: dict[str, CellTask] = {}
        for task in tasks:
            # A verification benchmark is generated (seeded) where its cells run: nothing to ship.
            if not task.benchmark and task.artifact_group not in self._artifacts:
                groups.setdefault(task.artifact_group, task)
        refs = {group: self._build.options(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False,
                                           resources={NODE_RESOURCE: SHARED_FRACTION})
                .remote(task, self.config, self.timeout_s) for group, task in groups.items()}
        for group, ref in refs.items():
            try:
                out = self.ray.get(ref)
            except Exception as exc:  # the Ray worker died more often than it may be retried
                self._broken.mark(group, CellResult(
                    groups[group].cell_key, "failed", stage="artifact", error_type=type(exc).__name__,
                    reason=f"artifact build: Ray worker lost after {self.max_retries} retries: {_first_line(exc)}"))
                continue
            if "failed" in out:
                self._broken.mark(group, out["failed"])
            else:
                self._artifacts[group] = self.ray.put(out)

    def _run_all(self, tasks: list[CellTask]) -> Iterator[CellResult]:
        pending: dict[Any, CellTask] = {}
        for task in tasks:
            result = self._broken.settled(task)
            if result is not None:
                yield result
                continue
            ref = self._run.options(**self._options(task)).remote(task, self.config, self.timeout_s,
                                                                   self._artifacts.get(task.artifact_group))
            pending[ref] = task
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                result = self.ray.get(done[0])
            except Exception as exc:  # the Ray worker died more often than it may be retried
                result = CellResult(task.cell_key, "failed", stage="suite", error_type=type(exc).__name__,
                                    reason=f"Ray worker lost after {self.max_retries} retries: {_first_line(exc)}")
            self._broken.note(task, result)
            yield result

    def close(self) -> None:
        """Shut down the local Ray instance this executor started (an existing cluster is left alone)."""
        if self.started_here:
            self.ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = exception_text(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
