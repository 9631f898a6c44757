"""The local executor: cells run in a worker process with a time limit.

One worker process serves cells one after another (it imports torch once), and
is replaced whenever a cell fails: an exception, a hang past the time limit
(the worker is killed), an out-of-memory or a hard crash (the process dies).
Every one of those becomes a ``failed`` result the driver records; the run
goes on with a fresh worker.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

from harness.run.worker import worker_main

_POLL_S = 0.05


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "worker process vanished"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process died of {name}"
    return f"worker process exited with status {code}"


def settled(cell: Any, broken: dict[str, dict]) -> dict | None:
    """The result of a cell that needs no execution: skipped by the plan, or its artifact already failed."""
    if cell.skip_reason:
        return {"status": "skipped", "reason": cell.skip_reason}
    prior = broken.get(cell.artifact_group)
    if prior is not None:
        return {"status": "failed", "stage": "artifact", "error_type": prior.get("error_type"),
                "reason": f"artifact build failed earlier in this run: {prior['reason']}",
                "traceback": prior.get("traceback")}
    return None


def note_broken(cell: Any, result: dict, broken: dict[str, dict]) -> None:
    """Remember an artifact that could not be built, so its other cells fail at once, not again."""
    if result["status"] == "failed" and result.get("stage") in ("dataset", "artifact", "benchmark"):
        broken[cell.artifact_group] = result


class LocalExecutor:
    """Runs tasks in an isolated worker process, recovering from anything a cell does.

    ``target(conn, config)`` is the worker's entry point (default: the cell worker); it
    answers each task with any number of ``{"event": ...}`` messages, then one result dict.
    The conformance checker serves its contracts through the same executor.
    """

    def __init__(self, config: dict, timeout_s: float, target: Callable[[Any, dict], None] = worker_main):
        self.config = dict(config)
        self.timeout_s = timeout_s
        self._target = target
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=self._target, args=(child, self.config), daemon=False,
                                       name="harness-worker")
        self._proc.start()
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def execute(self, cells: list, make_task: Callable[[Any], dict]) -> Iterator[tuple[Any, dict]]:
        """Run ``cells`` one after another (the order the plan gives: dense baselines first).

        One cell at a time on this machine is also what keeps a latency measurement honest.
        ``make_task(cell)`` is called just before a cell runs.
        """
        broken: dict[str, dict] = {}
        for cell in cells:
            result = settled(cell, broken)
            if result is None:
                result = self.run(make_task(cell))
                note_broken(cell, result, broken)
            yield cell, result

    def run(self, task: dict, on_event: Callable[[dict], None] | None = None) -> dict:
        """Run one task; return the worker's result or a ``failed`` result describing its death.

        ``on_event(message)`` receives each event the worker sends before its result.
        """
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            self._start()
        timeout = float(task.get("timeout_s") or self.timeout_s)
        start = time.monotonic()
        stage = "setup"
        try:
            self._conn.send(task)
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            return self._failed(stage, "WorkerError", f"could not reach the worker process: {exc}", start)
        while True:
            if self._conn.poll(_POLL_S):
                try:
                    result = self._conn.recv()
                except (EOFError, OSError):
                    code = self._exitcode()
                    self._kill()
                    return self._failed(stage, "WorkerCrash", f"{_describe_exit(code)} during {stage}", start)
                if "event" in result:
                    stage = result.get("stage", stage)
                    if on_event is not None:
                        on_event(result)
                    continue
                if result.get("status") == "failed":
                    # The worker may be in a bad state (half-freed memory, wedged threads): replace it.
                    self._kill()
                return result
            if not self._proc.is_alive():
                code = self._exitcode()
                self._kill()
                return self._failed(stage, "WorkerCrash", f"{_describe_exit(code)} during {stage}", start)
            if time.monotonic() - start > timeout:
                self._kill()
                return self._failed(stage, "Timeout", f"cell timed out after {timeout:g} s during {stage} "
                                    "(worker killed)", start)

    def _exitcode(self) -> int | None:
        self._proc.join(2)
        return self._proc.exitcode

    @staticmethod
    def _failed(stage: str, error_type: str, reason: str, start: float) -> dict:
        return {"status": "failed", "stage": stage, "error_type": error_type, "reason": reason,
                "traceback": "", "info": {}, "measurements": [], "duration_s": time.monotonic() - start}

    def close(self) -> None:
        """Stop the worker."""
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            try:
                self._conn.send(None)
                self._proc.join(2)
            except (BrokenPipeError, OSError):
                pass
        self._kill()
