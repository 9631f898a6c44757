"""Suites: the spec, the metrics it declares (:class:`MetricSpec`), what ``run`` is handed
(:class:`CellContext`) and what it returns (:class:`Measurement`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.plugin.params import Param
from harness.plugin.specs.backend import Session
from harness.plugin.specs.common import SpecError, check_common, must_be_callable
from harness.plugin.specs.data import Splits
from harness.plugin.specs.method import Artifact


@dataclass(frozen=True)
class MetricSpec:
    """A metric a suite produces: its unit, whether higher is better, and what it means."""

    name: str
    unit: str
    higher_is_better: bool | None
    description: str


@dataclass
class Measurement:
    """One measured value: a row of the leaderboard's long table.

    :param params: what else identifies it inside its cell (``{"batch_size": 1}``).
    :param stats: statistics behind the value (n, ci, cv, ...).
    :param samples: raw samples (latency: milliseconds per batch), stored beside it.
    :param info: how it was measured (backend session info, timing method, threads, batch).
    :param flag: why this result failed a gate (``"quality gate: top1 retained 0.95 < 0.99"``), or
        ``None``. A flagged measurement flags its whole leaderboard row: the row is shown with the
        reason but never ranked and never on a Pareto frontier. Suites that check results (the
        accuracy suite's quality gate, the soundness suite) set it.
    """

    metric: str
    value: float | None
    unit: str
    params: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    samples: list[float] | None = None
    info: dict = field(default_factory=dict)
    flag: str | None = None


@dataclass(frozen=True)
class CellContext:
    """Everything a suite needs to measure one cell; handed to :attr:`SuiteSpec.run`.

    :param cell: the cell's identity (model, dataset, method, backend, their parameters, seed).
    :param artifact: the compressed model.
    :param splits: the dataset.
    :param settings: this suite's validated settings from the suite file.
    :param open_session: ``open_session() -> Session`` on the cell's backend (``None`` for suites
        that are not per backend).
    :param baseline: ``baseline(metric, **params) -> float | None``: the value the same cell measured
        with the ``dense`` method in this run (``None`` when there is none).
    :param backend_name: the backend's name, or ``None``.
    :param is_baseline: this cell *is* the dense baseline (compare it with itself).
    :param time_in_processes: ``time_in_processes(batches, plan, processes) -> list[TimingResult]``:
        time the cell's backend in that many fresh processes, one after another (pyperf's worker
        processes), each opening its own session; ``None`` for suites that are not per backend.
    :param task: the dataset's task (:data:`TASKS`).
    :param open_dense_session: ``open_dense_session() -> Session`` on the same backend for the
        ``dense`` artifact of the same model, data and seed (built or taken from the cache), for
        metrics that compare outputs with the dense model's (embedding fidelity); ``None`` for
        suites that are not per backend.
    :param verifier_name: the cell's verifier, for suites with ``per_verifier`` (else ``None``).
    :param verify: ``verify(onnx_path, vnnlib_path, timeout_s) -> harness.verify.verdicts.Verdict``:
        run the cell's verifier on one instance, in its own process (``None`` without a verifier).
    :param benchmark: for suites with ``on_benchmark``: the verification benchmark
        (:class:`harness.verify.benchmarks.Benchmark`); ``artifact`` and ``splits`` are then ``None``.
    :param workdir: a folder private to this cell for files the suite writes (VNN-LIB properties).
    """

    cell: Mapping[str, Any]
    artifact: Artifact | None
    splits: Splits | None
    settings: Mapping[str, Any]
    open_session: Callable[[], Session] | None
    baseline: Callable[..., float | None]
    backend_name: str | None = None
    is_baseline: bool = False
    time_in_processes: Callable[..., list] | None = None
    task: str = "classification"
    open_dense_session: Callable[[], Session] | None = None
    verifier_name: str | None = None
    verify: Callable[..., Any] | None = None
    benchmark: Any = None
    workdir: Path | None = None


@dataclass(frozen=True)
class SuiteSpec:
    """A suite: turns one cell into measurements.

    :param run: ``run(ctx: CellContext) -> list[Measurement]``.
    :param settings: the parameters of its ``[settings.<name>]`` table in a suite file.
    :param per_backend: ``False`` for suites whose result does not depend on the backend (size);
        they run once per artifact.
    :param needs_baseline: the planner adds the ``dense`` cells it compares against when a suite
        file leaves them out.
    :param per_verifier: the suite runs once per verifier of its ``[[matrix]]`` table's ``verifiers``
        (instead of per backend); the leaderboard's ``backend`` column then names the verifier.
    :param on_benchmark: the suite runs on the verification benchmarks of ``[[verification]]``
        tables (once per benchmark, method, seed and verifier), not on a model and dataset.
    :param metrics: the metrics it produces.
    :param exclusive: its cells time things, so no other cell may run beside them on the same
        machine (the local executor runs one cell at a time anyway; the ray executor reserves the
        node).
    :param example: ``example(workdir) -> dict``: settings ``harness check-plugin`` runs it with
        (default: the declared defaults).

    ``name`` and ``description`` are the fields every spec has (:mod:`harness.plugin.specs.common`).
    """

    name: str
    run: Callable[[CellContext], list[Measurement]]
    settings: tuple[Param, ...] = ()
    per_backend: bool = True
    needs_baseline: bool = False
    per_verifier: bool = False
    on_benchmark: bool = False
    metrics: tuple[MetricSpec, ...] = ()
    exclusive: bool = False
    description: str = ""
    example: Callable[[Path], dict] | None = None

    @property
    def params(self) -> tuple[Param, ...]:
        """Suites take settings, not parameters (kept for uniform checks)."""
        return self.settings

    def check(self) -> None:
        """Raise :class:`SpecError` when malformed."""
        check_common(self)
        must_be_callable(self, "run", "run(ctx) -> list[Measurement]")
        if self.on_benchmark and not self.per_verifier:
            raise SpecError(f"{self.name}: a suite on verification benchmarks runs per verifier "
                            "(set per_verifier=True)")
