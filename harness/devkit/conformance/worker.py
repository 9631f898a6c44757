"""The checker's worker process: runs one registered thing's contract per task.

Served through :class:`harness.run.local.LocalExecutor`, as cells are: each clause is announced
(``{"event": "stage"}``) and reported (``{"event": "result"}``) as it ends, so a plugin that
crashes the process or hangs is pinned on the clause it was in.
"""

from __future__ import annotations

import signal
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.core.errors import describe_exception
from harness.devkit.conformance.clauses import Clauses, describe
from harness.devkit.conformance.contract import Options
from harness.devkit.conformance.report import CheckResult

_HOST = None


def contracts() -> dict[str, type]:
    """The contract class of each kind."""
    from harness.devkit.conformance.backend import BackendContract
    from harness.devkit.conformance.dataset import DatasetContract
    from harness.devkit.conformance.method import MethodContract
    from harness.devkit.conformance.model import ModelContract
    from harness.devkit.conformance.suite import SuiteContract
    from harness.devkit.conformance.verifier import VerifierContract

    return {"method": MethodContract, "model": ModelContract, "dataset": DatasetContract,
            "backend": BackendContract, "suite": SuiteContract, "verifier": VerifierContract}


def run_task(task: dict, config: dict, host: Any, emit, stage=lambda name: None) -> dict:
    """Run the contract of ``task["kind"]`` / ``task["name"]``; report clauses through ``emit``."""
    try:
        clauses = Clauses(subject=task["subject"], emit=emit, stage=stage, plugin_dirs=config["plugin_dirs"])
        workdir = Path(tempfile.mkdtemp(prefix=f"{task['kind']}-", dir=config["workdir"]))
        contract = contracts()[task["kind"]](host, task["name"], Options(**config["options"]), clauses, workdir)
        contract.check()
        return {"status": "ok"}
    except BaseException as exc:  # noqa: BLE001 - the checker's own trouble is reported, never raised
        return {"status": "failed", "error_type": type(exc).__name__, "reason": describe(exc, config["plugin_dirs"]),
                "traceback": traceback.format_exc()}


def serve(conn: Any, config: dict) -> None:
    """Entry point of a checker worker: load the host once, then run contracts until told to stop."""
    from harness.devkit.conformance.target import Target, host_for
    from harness.run.worker import _die_with_parent, tasks

    global _HOST
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for task in tasks(conn):

        def emit(result: CheckResult) -> None:
            conn.send({"event": "result", "result": asdict(result)})

        def stage(name: str) -> None:
            conn.send({"event": "stage", "stage": name})

        try:
            if _HOST is None:
                _HOST = host_for(Target(**config["target"]))
        except BaseException as exc:  # noqa: BLE001
            conn.send({"status": "failed", "reason": f"loading plugins: {describe_exception(exc)}"})
            continue
        conn.send(run_task(task, config, _HOST, emit, stage))
