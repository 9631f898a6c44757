"""The worker side: runs cell tasks in an isolated process and answers each with its result.

A worker receives a :class:`harness.run.task.CellTask` (everything it needs: the cell, the suite's
settings, the cache folder, the plugin folder, the baseline's values), loads the plugins itself
(the same discovery as the driver), builds or reuses the cell's artifact and runs the suite.
Anything that goes wrong inside becomes a ``failed`` :class:`harness.run.task.CellResult` with the
error and traceback; a hard crash kills only this process, and the executor reports it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.core.clock import now
from harness.core.errors import describe_exception, exception_text, exception_type, format_traceback
from harness.core.identity import canonical
from harness.core.paths import use_cache_dir
from harness.measure.honesty import check_measurement, claims_check
from harness.plan.cells import BASELINE_METHOD
from harness.plugin.specs import Artifact, CellContext, Skip
from harness.run.isolation import flush_output, restore_output
from harness.run.measured import checked, plain
from harness.run.task import CellResult, CellTask

_HOSTS: dict = {}


def _host(plugins_dir: str | None):
    """The plugin host of this process (loaded once: every task of a run names the same folder)."""
    if plugins_dir not in _HOSTS:
        from harness.plugin.manager import load_host

        _HOSTS[plugins_dir] = load_host(plugins_dir)
    return _HOSTS[plugins_dir]


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the driver dies (a killed run leaves no orphans)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _limit_memory(mb: int) -> None:
    if mb > 0:
        import resource

        limit = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _task_of(registry: Any, cell: dict) -> str:
    """The cell's dataset's task; a verification benchmark's networks are classifiers."""
    if cell.get("benchmark") or not cell.get("dataset"):
        return "classification"
    return registry.get("dataset", cell["dataset"]["name"]).spec.task


def _baseline_lookup(task: CellTask):
    """``baseline(metric, **params)``: the dense cell's value in this run, which the driver read from
    the store and put in the task (workers never open the database: on a cluster they cannot)."""
    rows = {(metric, canonical(params)): value for metric, params, value in task.baselines}

    def baseline(metric: str, **params: Any) -> float | None:
        return rows.get((metric, canonical(params)))

    return baseline


def run_cell(task: CellTask, report: Any = None) -> CellResult:
    """Run one cell (see :func:`_run_cell`), stamping when it started. Never raises."""
    started = now()
    result = _run_cell(task, report)
    result.started_at = started
    return result


def _run_cell(task: CellTask, report: Any = None) -> CellResult:
    """Run one cell; return its :class:`CellResult`. Never raises.

    ``report(stage)`` is told each stage as it starts, so that the driver knows where a
    worker was when it crashed or hung (a crash while building an artifact fails every
    cell of that artifact; a crash in a suite fails only its cell).
    """
    t0 = time.perf_counter()
    stage = "setup"

    def enter(name: str) -> str:
        if report is not None:
            report(name)
        return name
    info: dict = {}
    key = task.cell_key

    def done(status: str, measurements: list | None = None, **fields: Any) -> CellResult:
        if not info.get("cache"):
            info.pop("cache", None)  # kept only when a cache entry was rebuilt
        # info holds what plugins returned (a backend's fingerprint): plain JSON, or the driver could not store it
        return CellResult(key, status, measurements=measurements or [], info=plain(info),
                          duration_s=time.perf_counter() - t0, **fields)

    try:
        cache_dir = Path(task.cache_dir)
        use_cache_dir(cache_dir)  # plugins in this process (and what they start) use the run's folder
        host = _host(task.plugins_dir)
        registry = host.registry
        cell = task.cell
        from harness.build.artifacts import build_artifact, load_dataset
        from harness.core.files import check_entry
        from harness.core.identity import Component

        suite_reg = registry.get("suite", task.suite)
        suite = suite_reg.spec
        artifact = splits = benchmark = None
        if cell.get("benchmark"):
            from harness.build.benchmarks import compress
            from harness.verify.benchmarks import materialize

            stage = enter("benchmark")
            benchmark = materialize(Component(**cell["model"]), cell["seed"], cache_dir,
                                    notes=info.setdefault("cache", []))
            benchmark = compress(benchmark, registry, Component(**cell["method"]), cell["seed"], cache_dir,
                                 info.setdefault("cache", []))
            info["benchmark"] = {"name": benchmark.name, "counts": benchmark.counts(),
                                 "generated": benchmark.info.get("generated")}
            if task.build_only:
                return done("ok")
        else:
            stage = enter("dataset")
            splits = load_dataset(registry, Component(**cell["dataset"]), cache_dir)
            stage = enter("artifact")
            prebuilt = task.artifact_key and cache_dir / "artifacts" / task.artifact_key
            if prebuilt and (prebuilt / "artifact.json").is_file() and check_entry(prebuilt) is None:
                artifact = Artifact.open(prebuilt)  # built once elsewhere and shipped here (ray executor)
            else:  # absent or corrupt: build_artifact builds it (again), noting a rebuild in info["cache"]
                artifact = build_artifact(registry, cell, splits, cache_dir, info.setdefault("cache", []))
            info["artifact_key"] = artifact.key
            info["artifact"] = {k: artifact.manifest.get(k) for k in ("formats", "claims", "weights", "build_s")}
            if task.build_only:  # the ray executor builds each artifact once, up front
                return done("ok")
        open_session = open_dense_session = None
        backend_name = None
        if cell.get("backend"):
            backend_name = cell["backend"]["name"]
            bspec = registry.get("backend", backend_name).spec
            bparams = cell["backend"]["params"]
            fmt = next((f for f in bspec.accepts if f in artifact.formats), None)
            if fmt is None:
                raise Skip(f"backend {backend_name} runs {'/'.join(bspec.accepts)} artifacts; this artifact "
                           f"has {'/'.join(artifact.formats)}")
            info["backend_fingerprint"] = bspec.fingerprint(bparams)

            def open_session(_spec=bspec, _params=bparams):
                return _spec.session(artifact, _params)

            def open_dense_session(_spec=bspec, _params=bparams):
                # The dense artifact of the same model, data and seed: cached, so usually a lookup.
                dense_cell = {**cell, "method": {"name": BASELINE_METHOD, "params": {}}}
                return _spec.session(build_artifact(registry, dense_cell, splits, cache_dir,
                                                    info.setdefault("cache", [])), _params)

        timed_elsewhere = None
        if backend_name is not None:
            def timed_elsewhere(batches, plan, processes, _name=backend_name, _params=bparams):
                return time_in_processes(task.plugins_dir, cache_dir, _name, _params, artifact.path, batches,
                                         plan, processes)

        verifier_name, verify = None, None
        workdir = Path(tempfile.mkdtemp(prefix="cell-", dir=_scratch(cache_dir)))
        if cell.get("verifier"):
            verifier_name = cell["verifier"]["name"]
            verify = _verifier_runner(registry.get("verifier", verifier_name).spec, cell["verifier"]["params"],
                                      workdir / "verifier", task.plugins_dir)
            info["verifier"] = cell["verifier"]
        ctx = CellContext(cell=task.identity, artifact=artifact, splits=splits,
                          settings=task.settings, open_session=open_session,
                          baseline=_baseline_lookup(task), backend_name=backend_name,
                          is_baseline=not task.baseline_key, time_in_processes=timed_elsewhere,
                          verifier_name=verifier_name, verify=verify, benchmark=benchmark, workdir=workdir,
                          task=_task_of(registry, cell), open_dense_session=open_dense_session)
        stage = enter("suite")
        try:
            measurements = suite.run(ctx)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        measurements = checked(task.suite, suite_reg.plugin.label, measurements)
        if artifact is not None:  # whatever the suite: the method's claims, measured once per artifact
            stage = enter("claims")
            measurements.append(check_measurement(claims_check(artifact)))
        return done("ok", measurements)
    except Skip as exc:
        return done("skipped", reason=exception_text(exc))
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a record
        # Formatted defensively: a plugin's exception whose __str__ raises still fails only its cell.
        return done("failed", stage=stage, error_type=exception_type(exc),
                    reason=f"{stage}: {describe_exception(exc)}", traceback=format_traceback(exc))


def _scratch(cache_dir: Path) -> Path:
    """Where cells keep their private files (VNN-LIB properties, verifier results) while they run."""
    folder = cache_dir / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _verifier_runner(spec: Any, params: dict, workdir: Path, plugins_dir: str | None) -> Any:
    """``verify(onnx_path, vnnlib_path, timeout_s) -> Verdict``: the cell's verifier, one process per call.

    An ``error`` verdict (the verifier did not run to an answer) raises :class:`VerifierFailed`: the
    cell fails with the reason, whatever suite asked, instead of scoring a broken host as ``unknown``.
    """
    from harness.verify.process import run_verifier
    from harness.verify.verdicts import ERROR, VerifierFailed

    calls = [0]

    def verify(onnx_path: Any, vnnlib_path: Any, timeout_s: float) -> Any:
        calls[0] += 1
        verdict = run_verifier(spec, params, onnx_path, vnnlib_path, timeout_s, workdir=workdir / str(calls[0]),
                               plugins_dir=plugins_dir)
        if verdict.result == ERROR:
            raise VerifierFailed(f"verifier {spec.name} gave no answer on {Path(onnx_path).name} with "
                                 f"{Path(vnnlib_path).name}: {verdict.error}")
        return verdict

    return verify


def _time_child(conn: Any, plugins_dir: str | None, cache_dir: str, backend: str, params: dict, artifact_path: str,
                batches: list, plan: Any) -> None:
    """A fresh process that opens one session, times it and sends the result back."""
    _die_with_parent()
    try:
        use_cache_dir(cache_dir)
        spec = _host(plugins_dir).registry.get("backend", backend).spec
        session = spec.session(Artifact.open(Path(artifact_path)), params)
        try:
            result = session.time(batches, plan)
            result.info["session_info"] = dict(session.info)
            conn.send(("ok", result))
        finally:
            session.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", describe_exception(exc)))


def time_in_processes(plugins_dir: str | None, cache_dir: Path, backend: str, params: dict, artifact_path: Path,
                      batches: list, plan: Any, processes: int) -> list:
    """Time a backend in ``processes`` fresh processes, one after another, as pyperf's workers do.

    Each process pays its own start-up and warm-up, so process-level effects (memory layout,
    thread placement, allocator state) vary between samples instead of biasing all of them.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    results = []
    for _ in range(processes):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_time_child, args=(child, plugins_dir, str(cache_dir), backend, params,
                                                     str(artifact_path), batches, plan), daemon=True)
        proc.start()
        child.close()
        try:
            status, payload = parent.recv()
        except EOFError:
            proc.join(5)
            raise RuntimeError(f"timing process died (exit status {proc.exitcode})") from None
        proc.join(30)
        if status != "ok":
            raise RuntimeError(f"timing process failed: {payload}")
        results.append(payload)
    return results


def tasks(conn: Any) -> Iterator[Any]:
    """The tasks the driver sends over ``conn``, until it sends ``None`` or closes the pipe."""
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        yield task


def worker_main(conn: Any, config: dict) -> None:
    """Entry point of a worker process: serve tasks from the executor until told to stop.

    ``config`` sets up the process (``memory_limit_mb``); each task message is a
    :meth:`CellTask.to_dict`, each reply a :meth:`CellResult.to_dict`.
    """
    import faulthandler

    _die_with_parent()
    _limit_memory(config.get("memory_limit_mb", 0))
    # The driver handles Ctrl-C; a worker must not die of the terminal's SIGINT mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()  # a hard crash leaves its Python stack on stderr, which the cell's info keeps
    os.environ.setdefault("PYTHONHASHSEED", "0")
    home = os.getcwd()
    for message in tasks(conn):
        task = CellTask.from_dict(message)
        result = run_cell(task, report=lambda stage: conn.send({"event": "stage", "stage": stage}))
        send_result(conn, task.cell_key, result.to_dict)
        _restore(home)


def _restore(home: str) -> None:
    """Undo what a cell may have changed in the process for the next one: the working directory,
    SIGINT ignored (a plugin may have installed a handler), stdout and stderr."""
    try:
        os.chdir(home)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    restore_output()


def send_result(conn: Any, cell_key: str, reply: Any) -> None:
    """Send ``reply()`` (a result dict) after the cell's output; a reply that cannot be sent (it does not
    pickle, say) becomes a ``failed`` result saying why, so the cell is never lost."""
    flush_output()
    try:
        conn.send(reply())
    except (BrokenPipeError, ConnectionError):
        raise
    except BaseException as exc:  # noqa: BLE001 - the reply was the plugin's data
        conn.send(CellResult(cell_key, "failed", stage="suite", error_type=exception_type(exc),
                             reason=f"the cell's result could not be sent to the driver: {describe_exception(exc)}",
                             traceback=format_traceback(exc)).to_dict())
