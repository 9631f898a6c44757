"""The driver: plan a suite, resume what is missing, execute cells, record each one.

The driver decides what runs before anything runs: the cells without a record (resume), those the
plan skips (recorded at once), then the dense baselines as one batch of
:class:`harness.run.task.CellTask` and the rest as another, each task carrying the baseline's values
read from the store. An executor turns tasks into :class:`harness.run.task.CellResult`; the driver
records each as it arrives. It is the only writer to the store, one transaction per cell. A run
interrupted anywhere (even ``kill -9``) resumes with the cells that have no record; a complete run
measures nothing when asked again.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__
from harness.core import paths
from harness.core.clock import now
from harness.core.identity import digest
from harness.measure.honesty import CHECK_METRICS, CHECKS_SUITE
from harness.plan import pipeline
from harness.plan.cells import BASELINE_METHOD, Cell, Plan
from harness.plan.size import CELL_LIMIT
from harness.plan.suitefile import load_plan
from harness.plugin.manager import Host, load_host
from harness.run.local import LocalExecutor
from harness.run.machine import fingerprint, git_revision
from harness.run.task import CellResult, CellTask, Executor
from harness.store.db import CellRow, Store
from harness.store.lock import RunLock, describe_previous


class Terminated(KeyboardInterrupt):
    """The driver got SIGTERM: it stops as on Ctrl-C (the run is marked ``interrupted``, cells kept)."""


def _on_sigterm(signum, frame):
    raise Terminated("terminated (SIGTERM)")


@dataclass
class RunSummary:
    """What a call to :func:`run_suite` did."""

    run_id: int
    resumed: bool
    planned: int
    already_done: int
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    #: Set when this driver took over the run lock of a driver that died holding it.
    took_over: str | None = None

    @property
    def executed(self) -> int:
        """Cells recorded by this call."""
        return self.ok + self.skipped + self.failed

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when a cell failed."""
        return 1 if self.failed else 0


def _component(c) -> dict | None:
    return None if c is None else c.as_dict()


def cell_task(cell: Cell, plan: Plan, store: Store, run_id: int, cache_dir: Path,
              plugins_dir: str | None) -> CellTask:
    """The task a worker runs for ``cell``, with the dense baseline's values of this run.

    Built once the baselines are recorded (the driver runs them as a batch of their own first).
    """
    baseline_key, baselines = None, []
    if cell.method.name != BASELINE_METHOD:
        baseline_key = digest(cell.baseline_identity())
        baselines = [[metric, json.loads(params), value]
                     for metric, params, value in store.measurement_values(run_id, baseline_key)]
    return CellTask(
        cell_key=cell.key, suite=cell.suite,
        cell={"model": cell.model.as_dict(), "dataset": cell.dataset.as_dict(),
              "method": cell.method.as_dict(), "seed": cell.seed, "backend": _component(cell.backend),
              "verifier": _component(cell.verifier), "benchmark": cell.benchmark},
        identity=cell.identity, artifact_group=cell.artifact_group, settings=plan.settings.get(cell.suite, {}),
        cache_dir=str(cache_dir), plugins_dir=plugins_dir, timeout_s=plan.execution["timeout_s"],
        baseline_key=baseline_key, baselines=baselines)


def _provenance(host: Host, cell: Cell) -> dict:
    out = {"method": pipeline.provenance(host.registry, cell.method.name, cell.method.params)}
    pairs = [("suite", cell.suite)]
    if cell.benchmark:  # the benchmark comes from the host (generated or imported), not from a plugin
        out["benchmark"] = {"source": cell.model.name, "distribution": "compression-harness", "version": __version__}
    else:
        pairs += [("model", cell.model.name), ("dataset", cell.dataset.name)]
    if cell.backend is not None:
        pairs.append(("backend", cell.backend.name))
    if cell.verifier is not None:
        pairs.append(("verifier", cell.verifier.name))
    for kind, name in pairs:
        p = host.registry.get(kind, name).plugin
        out[kind] = {"plugin": p.name, "distribution": p.distribution, "version": p.version}
    return out


def _cell_row(host: Host, cell: Cell, result: CellResult, started: str) -> CellRow:
    ident = cell.identity
    info = dict(result.info)
    if result.executor is not None:
        info["executor"] = result.executor
    return CellRow(
        cell_key=cell.key, artifact_group=cell.artifact_group, artifact_key=result.artifact_key,
        **{k: ident[k] for k in ("model", "model_params", "dataset", "dataset_params", "method",
                                 "method_params", "seed", "backend", "backend_params", "suite")},
        status=result.status, reason=result.reason, error_type=result.error_type, traceback=result.traceback,
        plugins=_provenance(host, cell), info=info, implicit=int(cell.implicit), started_at=started,
        finished_at=now(), duration_s=result.duration_s)


def run_suite(suite_path: str | Path, *, db: str | Path = paths.DEFAULT_DB,
              cache_dir: str | Path | None = None, plugins_dir: str | None = None, resume: bool = True,
              retry_failed: bool = False, progress: bool = True, host: Host | None = None,
              on_plan: Callable[[Plan], None] | None = None, tag: str | None = None,
              executor: str = "local", ray_address: str | None = None,
              ray_wait_s: float = 10.0, max_cells: int | None = CELL_LIMIT) -> RunSummary:
    """Run (or resume) a suite file into the leaderboard at ``db``.

    ``tag`` names the run (``nightly``) for ``compare`` and ``history``; resuming continues the
    latest run of the same suite file *and* tag, so a crashed nightly resumes as a nightly.
    A plan of more than ``max_cells`` cells is refused before it is expanded
    (:class:`harness.plan.size.PlanTooLarge`); ``None`` runs any size (``harness run --yes``).

    Raises :class:`harness.plan.suitefile.SuiteFileError` or :class:`harness.plugin.manager.PluginError`
    before anything runs when the suite file or a plugin is broken.
    """
    host = host or load_host(plugins_dir)
    plan = load_plan(suite_path, host.registry, max_cells=max_cells)
    if on_plan:
        on_plan(plan)
    # Read once here; workers and the plugins in them (npm packages, emulated roots) get it in each task.
    cache = (Path(cache_dir) if cache_dir else paths.cache_dir()).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    # One driver per run: the lock covers finding or creating the run, so two drivers of one suite
    # file started at the same instant never make two runs, and a second one refuses (naming the first).
    lock = None
    if str(db) != ":memory:":
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        lock = RunLock(db, plan.sha256, tag).acquire()
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        store = Store(db)
    except BaseException:
        _unlock(lock, previous_sigterm)
        raise
    try:
        for reg in host.registry.registered("suite"):
            store.register_metrics(reg.spec.name, reg.spec.metrics)
        store.register_metrics(CHECKS_SUITE, [CHECK_METRICS["claims"]])  # the worker adds it to every cell
        previous = store.latest_run_for_suite(plan.sha256, tag=tag) if resume else None
        if previous is not None:
            run_id, resumed = previous["id"], True
            statuses = store.cell_statuses(run_id)
        else:
            run_id = store.create_run(
                suite_name=plan.name, suite_path=str(suite_path), suite_sha256=plan.sha256,
                suite_text=plan.text, suite_version=plan.version, seeds=plan.seeds,
                harness_version=__version__,
                plugins={n: p.as_dict() for n, p in host.registry.plugins.items()},
                git_revision=git_revision(Path(suite_path).resolve().parent), machine=(fp := fingerprint()),
                machine_hash=fp["hash"], argv=sys.argv, tag=tag)
            resumed, statuses = False, {}
        todo = [c for c in plan.cells
                if c.key not in statuses or (retry_failed and statuses[c.key] == "failed")]
        summary = RunSummary(run_id=run_id, resumed=resumed, planned=len(plan.cells),
                             already_done=len(plan.cells) - len(todo),
                             took_over=describe_previous(lock.previous if lock else None))
        if not todo:
            if previous is not None and previous["status"] != "complete":
                store.finish_run(run_id, "complete")
            return summary
        if resumed:
            store.reopen_run(run_id)
        _execute(host, plan, todo, store, run_id, cache, summary, progress, executor, ray_address, ray_wait_s)
        store.finish_run(run_id, "complete")
        return summary
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (Terminated)
        store.finish_run(run_id, "interrupted") if "run_id" in locals() else None
        raise
    finally:
        store.close()
        _unlock(lock, previous_sigterm)


def _unlock(lock: RunLock | None, previous_sigterm) -> None:
    if previous_sigterm is not None:
        signal.signal(signal.SIGTERM, previous_sigterm)
    if lock is not None:
        lock.release()


def make_executor(kind: str, config: dict, plan: Plan, host: Host, address: str | None,
                  ray_wait_s: float = 10.0, cache_dir: Path | None = None) -> Executor:
    """The executor a run asked for: ``local`` (worker processes here) or ``ray`` (a Ray cluster)."""
    if kind == "local":
        return LocalExecutor(config, timeout_s=plan.execution["timeout_s"])
    if kind == "ray":
        from harness.run.ray import RayExecutor

        return RayExecutor(config, host=host, timeout_s=plan.execution["timeout_s"], address=address,
                           wait_for_nodes_s=ray_wait_s, cache_dir=cache_dir or paths.cache_dir())
    raise ValueError(f"unknown executor {kind!r} (known: local, ray)")


def _execute(host: Host, plan: Plan, todo: list[Cell], store: Store, run_id: int, cache: Path,
             summary: RunSummary, progress: bool, executor_kind: str = "local",
             ray_address: str | None = None, ray_wait_s: float = 10.0) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    executor = make_executor(executor_kind, {"memory_limit_mb": plan.execution["memory_limit_mb"]},
                             plan, host, ray_address, ray_wait_s, cache)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]{task.fields[ok]} ok[/] [yellow]{task.fields[skipped]} skipped[/] "
                          "[red]{task.fields[failed]} failed[/]"),
               TimeElapsedColumn(), TimeRemainingColumn())
    # Progress goes to stderr: stdout carries the leaderboard, which scripts may parse.
    with Progress(*columns, disable=not progress, transient=False, console=Console(stderr=True)) as bar:
        task_id = bar.add_task(plan.name, total=len(todo), ok=0, skipped=0, failed=0)
        started = now()  # when the next cell began, for results that carry no start of their own

        def record(cell: Cell, result: CellResult) -> None:
            nonlocal started
            where = cell.engine.name if cell.engine else "-"
            label = f"{cell.model.name}/{cell.method.name}/{where}/{cell.suite}"
            store.record_cell(run_id, _cell_row(host, cell, result, result.started_at or started),
                              [dataclasses.asdict(m) for m in result.measurements])
            started = now()
            if result.status == "ok":
                summary.ok += 1
            elif result.status == "skipped":
                summary.skipped += 1
            else:
                summary.failed += 1
                summary.failures.append(f"{label}: {result.reason}")
            bar.update(task_id, advance=1, description=label, ok=summary.ok, skipped=summary.skipped,
                       failed=summary.failed)

        try:
            for cell in todo:  # what the plan skips needs no executor
                if cell.skip_reason:
                    record(cell, CellResult(cell.key, "skipped", reason=cell.skip_reason))
            runnable = {c.key: c for c in todo if not c.skip_reason}
            # Dense baselines first, recorded before the cells that compare with them are even planned
            # as tasks: those tasks carry the baselines' values, read from the store.
            for wave in ([c for c in runnable.values() if c.method.name == BASELINE_METHOD],
                         [c for c in runnable.values() if c.method.name != BASELINE_METHOD]):
                if not wave:
                    continue
                tasks = [cell_task(c, plan, store, run_id, cache, host.plugins_dir) for c in wave]
                for result in executor.run(tasks):
                    record(runnable[result.cell_key], result)
        finally:
            executor.close()
