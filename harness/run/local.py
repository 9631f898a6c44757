"""The local executor: cells run in a worker process with a time limit.

One worker process serves cells one after another (it imports torch once), and
is replaced whenever a cell fails: an exception, a hang past the time limit
(the worker is killed), an out-of-memory or a hard crash (the process dies).
Every one of those becomes a ``failed`` result the driver records; the run
goes on with a fresh worker.

The worker runs in a session of its own, with its output captured (:mod:`harness.run.isolation`):
a worker that is replaced or closed is ended with every process it started, and what a cell
printed is kept, as a bounded tail, in the cell's ``info`` (``output``), never on the driver's terminal.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from harness.run.isolation import OutputTail, enter_session, kill_tree, snapshot
from harness.run.task import BrokenArtifacts, CellResult, CellTask
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


def _isolated(target: Callable[[Any, dict], None], conn: Any, config: dict, stdout: Any, stderr: Any) -> None:
    """A worker process's entry point: its own session, its output to the executor's pipes, then ``target``."""
    enter_session(os.dup(stdout.fileno()), os.dup(stderr.fileno()))
    stdout.close()
    stderr.close()
    target(conn, config)


class LocalExecutor:
    """Runs tasks in an isolated worker process, recovering from anything a cell does.

    ``target(conn, config)`` is the worker's entry point (default: the cell worker, which answers
    each :meth:`CellTask.to_dict` with :meth:`CellResult.to_dict`); it answers each task message with
    any number of ``{"event": ...}`` messages, then one reply dict. ``config`` is the worker
    process's own set-up (``memory_limit_mb``); what a cell needs comes in its task. The
    conformance checker serves its contracts through the same executor (:meth:`call`).
    """

    def __init__(self, config: dict, timeout_s: float, target: Callable[[Any, dict], None] = worker_main):
        self.config = dict(config)
        self.timeout_s = timeout_s
        self._target = target
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._broken = BrokenArtifacts()
        self._readers: dict[str, Any] = {}  # the current worker's stdout and stderr pipes
        self._tails = {"stdout": OutputTail(), "stderr": OutputTail()}  # what the current call printed

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        pipes = {name: self._ctx.Pipe(duplex=False) for name in self._tails}
        self._proc = self._ctx.Process(target=_isolated, name="harness-worker", daemon=False,
                                       args=(self._target, child, self.config, pipes["stdout"][1], pipes["stderr"][1]))
        self._proc.start()
        child.close()
        self._conn = parent
        for name, (reader, writer) in pipes.items():
            writer.close()
            os.set_blocking(reader.fileno(), False)
            self._readers[name] = reader

    def _kill(self, also: list | None = None) -> None:
        if self._proc is not None:
            kill_tree(self._proc.pid, also=also or [])  # the worker and whatever its cells started
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._drain()
        for reader in self._readers.values():
            reader.close()
        self._readers = {}
        self._proc = self._conn = None

    def _drain(self) -> None:
        """Read what the worker printed so far into the streams' tails (a full pipe would block its writes)."""
        for name, reader in list(self._readers.items()):
            if not self._tails[name].drain(reader.fileno()):
                reader.close()
                del self._readers[name]

    def _output(self) -> dict:
        """What the worker printed during the current call: ``{"stdout": {...}, "stderr": {...}}``, streams
        with output only (see :meth:`harness.run.isolation.OutputTail.as_info`)."""
        self._drain()
        out = {name: tail.as_info() for name, tail in self._tails.items()}
        return {name: v for name, v in out.items() if v}

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]:
        """Run ``tasks`` one after another, in the order given (the driver gives dense baselines first).

        One cell at a time on this machine is also what keeps a latency measurement honest. A task
        whose artifact failed to build earlier in this run fails at once, without running again.
        """
        for task in tasks:
            result = self._broken.settled(task)
            if result is None:
                result = self.run_one(task)
                self._broken.note(task, result)
            yield result

    def run_one(self, task: CellTask) -> CellResult:
        """Run one cell task in the worker process; a dead or hung worker becomes a ``failed`` result."""
        reply = self.call(task.to_dict(), timeout_s=task.timeout_s)
        output = reply.pop("output", None)
        if output:
            reply["info"] = {**(reply.get("info") or {}), "output": output}
        return CellResult.from_dict({**reply, "cell_key": task.cell_key})

    def call(self, message: dict, timeout_s: float | None = None,
             on_event: Callable[[dict], None] | None = None) -> dict:
        """Send one task ``message`` to the worker; return its reply, or a ``failed`` reply describing its death.

        ``on_event(message)`` receives each event the worker sends before its reply. The conformance
        checker's contracts go through here too, as dicts of their own. What the worker printed
        meanwhile comes back as the reply's ``output`` (see :meth:`_output`).
        """
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            self._start()
        self._drain()  # what was printed between calls belongs to no cell
        for tail in self._tails.values():
            tail.reset()
        reply = self._call(message, timeout_s, on_event)
        output = self._output()
        if output:
            reply["output"] = output
            last = self._tails["stderr"].last_line()
            if reply.get("error_type") == "WorkerCrash" and last:
                reply["reason"] += f"; last line on its stderr: {last}"
        return reply

    def _call(self, message: dict, timeout_s: float | None, on_event: Callable[[dict], None] | None) -> dict:
        timeout = float(timeout_s or self.timeout_s)
        start = time.monotonic()
        stage = "setup"
        try:
            self._conn.send(message)
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            return self._failed(stage, "WorkerError", f"could not reach the worker process: {exc}", start)
        while True:
            readers = list(self._readers.values())
            ready = mp.connection.wait([self._conn, *readers], timeout=_POLL_S)
            if any(r in ready for r in readers):
                self._drain()
            if self._conn in ready:
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
        """Stop the worker, and end every process its cells left behind."""
        left = []
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            left = snapshot(self._proc.pid)  # before the worker exits and its adopted orphans leave its tree
            try:
                self._conn.send(None)
                self._proc.join(2)
            except (BrokenPipeError, OSError):
                pass
        self._kill(also=left)
