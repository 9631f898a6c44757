"""``harness check-plugin``: run every registered thing of a plugin through its contract."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

from harness.devkit.conformance.contract import Options
from harness.devkit.conformance.report import FAIL, PASS, SKIP, CheckResult, Report
from harness.devkit.conformance.target import Target, code_dirs, host_for, resolve
from harness.plugin.manager import Host, PluginError

#: Libraries a plugin module must not import when it is loaded (``harness plugins`` stays instant).
HEAVY = ("torch", "onnxruntime", "onnx", "pandas", "sklearn", "tensorflow", "jax")
DEFAULT_TIMEOUT_S = 300.0


def check_plugin(what: str | ModuleType, *, plugins_dir: str | None = None, options: Options | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, isolate: bool = True,
                 echo: Callable[[CheckResult], None] | None = None) -> Report:
    """Check every model, dataset, method, backend, suite and verifier the plugin(s) ``what`` register.

    ``what`` is a distribution name, a plugin name, a module (name or object) or a ``.py`` file.
    With ``isolate`` (the default) each thing's contract runs in a worker process with a time
    limit of ``timeout_s``, so a plugin that crashes or hangs is reported as a failure. ``echo``
    sees each result as it comes. Raises :class:`harness.devkit.conformance.target.TargetError` when
    nothing answers to ``what``.
    """
    options = options or Options()
    label = what if isinstance(what, str) else what.__name__
    report = Report(target=label)

    def emit(result: CheckResult) -> None:
        report.results.append(result)
        if echo is not None:
            echo(result)

    try:
        target = resolve(what, plugins_dir)
        host = host_for(target)
    except PluginError as exc:
        emit(CheckResult(f"plugin {label}", "loads and registers", FAIL, str(exc)))
        return report
    with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
        if not options.cache_dir:
            options.cache_dir = str(Path(tmp) / "cache")
        tasks = _plugin_clauses(host, target, emit)
        for kind, name in (("model", options.model), ("dataset", options.dataset)):
            if not host.registry.has(kind, name):
                emit(CheckResult("options", kind, FAIL, f"unknown {kind} {name!r} (known: "
                                 f"{', '.join(host.registry.names(kind))})"))
                return report
        config = {"target": asdict(target), "options": asdict(options), "workdir": tmp,
                  "plugin_dirs": code_dirs(host, target.plugins)}
        if isolate:
            _run_isolated(tasks, config, timeout_s, emit)
        else:
            from harness.devkit.conformance.worker import run_task

            for task in tasks:
                result = run_task(task, config, host, emit)
                if result["status"] != "ok":
                    emit(CheckResult(task["subject"], "contract", FAIL, result["reason"]))
    return report


def _plugin_clauses(host: Host, target: Target, emit: Callable[[CheckResult], None]) -> list[dict]:
    """Report how each plugin loaded; return a task per thing it registered."""
    tasks = []
    for pname in target.plugins:
        info = host.registry.plugins[pname]
        subject = f"plugin {info.label}"
        things = [(kind, n) for kind, names in info.registered.items() for n in names]
        if things:
            listed = "; ".join(f"{kind} {', '.join(names)}" for kind, names in info.registered.items() if names)
            emit(CheckResult(subject, "loads and registers", PASS, listed))
        else:
            emit(CheckResult(subject, "loads and registers", FAIL,
                             "registers nothing: implement a harness_register_* hook (see harness.api.hookspecs), "
                             "decorated with @hookimpl from harness.api, that calls register(spec)"))
        emit(CheckResult(subject, "import is light", *_light_import(info.location or "")))
        tasks += [{"kind": kind, "name": n, "subject": f"{kind} {n}"} for kind, n in things]
    return tasks


def _light_import(location: str) -> tuple[str, str]:
    """Import the plugin's module in a fresh interpreter and list the heavy libraries it pulled in."""
    if location.endswith(".py"):
        load = (f"import importlib.util as u; s = u.spec_from_file_location('checked_plugin', {location!r}); "
                "m = u.module_from_spec(s); s.loader.exec_module(m)")
    elif location:
        load = f"import importlib; importlib.import_module({location!r})"
    else:
        return SKIP, "no module to import"
    code = f"import sys; {load}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    # The same import path as the checker's (a plugin under test need not be installed).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode != 0:
        return FAIL, f"importing {location} failed: {proc.stderr.strip().splitlines()[-1:]}"
    heavy = [m for m in proc.stdout.strip().split(",") if m]
    if heavy:
        return FAIL, (f"importing {location} imports {', '.join(heavy)}: move those imports inside the functions "
                      "that use them, so 'harness plugins' and 'harness --help' stay instant")
    return PASS, f"importing {location} pulls in none of {', '.join(HEAVY)}"


def _run_isolated(tasks: list[dict], config: dict, timeout_s: float, emit: Callable[[CheckResult], None]) -> None:
    from harness.devkit.conformance.worker import serve
    from harness.run.local import LocalExecutor

    executor = LocalExecutor(config, timeout_s=timeout_s, target=serve)
    try:
        for task in tasks:
            def on_event(message: dict) -> None:
                if message.get("event") == "result":
                    emit(CheckResult(**message["result"]))

            result = executor.call(task, on_event=on_event)
            if result["status"] != "ok":
                stage = result.get("stage") or "contract"
                emit(CheckResult(task["subject"], stage, FAIL, f"{result['reason']} (the check's worker process "
                                 "was replaced; a plugin must never crash or hang the process it runs in)"))
    finally:
        executor.close()
