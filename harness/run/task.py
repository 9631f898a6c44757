"""The run boundary's contract: a :class:`CellTask` goes from the driver to an executor and its worker,
a :class:`CellResult` comes back to the driver, which records it in the store.

Both are plain dataclasses of JSON-able fields: they cross process boundaries (a multiprocessing pipe,
Ray's object store) as they are, or as :meth:`to_dict` output rebuilt by :meth:`from_dict`. An
:class:`Executor` turns tasks into results and knows nothing of the driver or the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.plugin.specs import Measurement

#: Stages whose failure breaks the cell's artifact (and so every cell that shares it).
ARTIFACT_STAGES = ("dataset", "artifact", "benchmark")


@dataclass
class CellTask:
    """Everything a worker needs to run one cell, decided by the driver before the cell runs.

    :param cell_key: the cell's key (hash of its identity); its result carries it back.
    :param suite: the suite to run.
    :param cell: the cell's components as plain dicts: ``model``, ``dataset``, ``method``, ``backend``
        and ``verifier`` (``{"name", "params"}`` or ``None``), ``seed`` and ``benchmark`` (a bool).
    :param identity: the cell's identity (what :attr:`harness.api.CellContext.cell` shows the suite).
    :param artifact_group: cells with the same group share one artifact.
    :param settings: the suite's validated settings from the suite file.
    :param cache_dir: the run's cache folder (artifacts, datasets, what plugins install).
    :param plugins_dir: the extra plugin folder the run was started with, or ``None``.
    :param timeout_s: the cell's time limit.
    :param baseline_key: the key of the dense cell this one compares with; ``None`` for a baseline.
    :param baselines: ``[metric, params, value]`` of that dense cell in this run, read by the driver
        from the store (workers never open the database: on a cluster they cannot).
    :param artifact_key: an artifact already in ``cache_dir`` to open instead of building (the ray
        executor ships each artifact to the node that runs its cells).
    :param build_only: build (or find) the artifact and stop (the ray executor's build tasks).
    """

    cell_key: str
    suite: str
    cell: dict
    identity: dict
    artifact_group: str
    settings: dict
    cache_dir: str
    plugins_dir: str | None
    timeout_s: float
    baseline_key: str | None = None
    baselines: list = field(default_factory=list)
    artifact_key: str | None = None
    build_only: bool = False

    @property
    def benchmark(self) -> bool:
        """Whether the cell runs on a verification benchmark (generated where it runs; nothing to ship)."""
        return bool(self.cell.get("benchmark"))

    def to_dict(self) -> dict:
        """The task as JSON-able data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CellTask:
        """The task :meth:`to_dict` wrote."""
        return cls(**data)


@dataclass
class CellResult:
    """What running one cell produced: ``ok``, ``skipped`` (with the reason) or ``failed``.

    :param cell_key: the key of the task it answers (executors may answer out of order).
    :param status: ``ok``, ``skipped`` or ``failed``.
    :param reason: why it was skipped or failed.
    :param stage: where a failure happened (``setup``, ``dataset``, ``artifact``, ``benchmark``,
        ``suite``); a failure in an artifact stage fails the artifact's other cells too.
    :param error_type: the exception's class name (``Timeout``, ``WorkerCrash`` for a dead worker).
    :param traceback: the worker's traceback of the failure.
    :param measurements: what the suite measured (only an ``ok`` cell has any).
    :param info: how the cell was run: artifact key and manifest, backend fingerprint, verifier,
        benchmark; stored as the cell's ``info``.
    :param executor: where it ran when that is not here (the ray executor: node, machine, pid).
    :param started_at: when the worker started it (:func:`harness.core.clock.now`), or ``None``.
    :param duration_s: how long it took in the worker, or ``None`` for a cell that never ran.
    """

    cell_key: str
    status: str
    reason: str | None = None
    stage: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    measurements: list[Measurement] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    executor: dict | None = None
    started_at: str | None = None
    duration_s: float | None = None

    @property
    def artifact_key(self) -> str | None:
        """The key of the artifact the cell ran on, when it got that far."""
        return self.info.get("artifact_key")

    @property
    def breaks_artifact(self) -> bool:
        """A failure while loading the data or building the artifact: its other cells cannot run either."""
        return self.status == "failed" and self.stage in ARTIFACT_STAGES

    def to_dict(self) -> dict:
        """The result as JSON-able data (measurements as dicts of their fields)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CellResult:
        """The result :meth:`to_dict` wrote."""
        data = dict(data)
        data["measurements"] = [m if isinstance(m, Measurement) else Measurement(**m)
                                for m in data.get("measurements") or ()]
        return cls(**data)


class Executor(Protocol):
    """Runs cell tasks somewhere and hands back one result per task, in any order, as each finishes.

    An executor sees only tasks: it never calls back into the driver nor opens the store, so the
    driver can record each result (one transaction per cell) the moment it arrives.
    """

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]:
        """Run ``tasks``; yield exactly one :class:`CellResult` per task."""
        ...

    def close(self) -> None:
        """Release what the executor started (worker processes, a local Ray instance)."""
        ...


class BrokenArtifacts:
    """Artifacts that failed to build in this run, so that their other cells fail at once, not again."""

    def __init__(self) -> None:
        self._failures: dict[str, CellResult] = {}

    def mark(self, group: str, failure: CellResult) -> None:
        """Remember that ``group``'s artifact could not be built, and why."""
        self._failures[group] = failure

    def note(self, task: CellTask, result: CellResult) -> None:
        """Remember ``task``'s artifact as broken when its result says so."""
        if result.breaks_artifact:
            self.mark(task.artifact_group, result)

    def settled(self, task: CellTask) -> CellResult | None:
        """The ``failed`` result of a task whose artifact already failed, or ``None`` when it may run."""
        prior = self._failures.get(task.artifact_group)
        if prior is None:
            return None
        return CellResult(task.cell_key, "failed", stage="artifact", error_type=prior.error_type,
                          reason=f"artifact build failed earlier in this run: {prior.reason}",
                          traceback=prior.traceback)

