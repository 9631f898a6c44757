"""Keeping a cell's faults to the cell: its worker in a session of its own, its output captured.

- **A session of its own.** Each worker process calls :func:`os.setsid` before it serves anything,
  and asks Linux to adopt its orphaned descendants (``PR_SET_CHILD_SUBREAPER``), so that every
  process a plugin starts (a ``subprocess``, a pool, a daemon that double-forks) is either in the
  worker's process group or one of its descendants. When the executor replaces a worker (a timeout,
  a crash, a failed cell) or closes, :func:`kill_tree` ends all of them: ``SIGTERM``, then ``SIGKILL``
  after :data:`KILL_GRACE_S`. Only a process that leaves the session *and* is re-parented away
  from the worker before the kill escapes (nothing does that by accident). The session also keeps
  the terminal's Ctrl-C (sent to the foreground process group) away from cells: the driver handles it.
- **Output captured.** The worker's file descriptors 1 and 2 are pipes to the executor (``dup2``
  at the OS level, so C extensions and child processes are caught too) and its stdin is
  ``/dev/null``. The executor drains the pipes while the cell runs and keeps the last
  :data:`OUTPUT_TAIL_BYTES` of each stream (:class:`OutputTail`), which the cell's ``info``
  records as ``output``; the driver's own output stays the driver's, however much a plugin prints.

Uses psutil (a dependency of pyperf already) to walk process trees.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

#: Bytes kept of each of a cell's output streams (the last ones): enough for an error message and
#: the lines before it, small enough for the store.
OUTPUT_TAIL_BYTES = 4096
#: Seconds a cell's processes get between SIGTERM and SIGKILL.
KILL_GRACE_S = 1.0

_PR_SET_CHILD_SUBREAPER = 36


def enter_session(stdout_fd: int | None = None, stderr_fd: int | None = None) -> None:
    """In a fresh worker process: a session of its own, orphans adopted, stdin empty, output to the given fds."""
    try:
        os.setsid()
    except OSError:  # already a session leader
        pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            pass
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, target in ((stdout_fd, 1), (stderr_fd, 2)):
        if fd is not None:
            os.dup2(fd, target)
            os.close(fd)
    # Spare copies, so that a cell that closes its stdout does not take the next cells' with it.
    _SAVED[:] = [os.dup(1), os.dup(2)]


_SAVED: list[int] = []


def restore_output() -> None:
    """Point fds 1 and 2 (and ``sys.stdout``, ``sys.stderr``) at the capture pipes again, after a cell that
    closed or replaced them (a later ``open`` would otherwise get fd 1, and the next cell's prints)."""
    for saved, fd, name in zip(_SAVED, (1, 2), ("stdout", "stderr")):
        try:
            os.dup2(saved, fd)
        except OSError:
            continue
        stream = getattr(sys, name)
        if stream is None or stream.closed or getattr(stream, "fileno", None) is None:
            setattr(sys, name, open(fd, "w", closefd=False, errors="backslashreplace"))


def flush_output() -> None:
    """Flush Python's and C's buffered output, so that a cell's output is in the pipe before its result."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a plugin closed or broke the stream
            pass
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _tree(pid: int) -> list[Any]:
    """The process ``pid``, its descendants and the members of its process group (psutil processes)."""
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        root = None
    found = {} if root is None else {root.pid: root}
    if root is not None:
        try:
            found.update({p.pid: p for p in root.children(recursive=True)})
        except psutil.NoSuchProcess:
            pass
    try:
        group = os.getpgid(pid) if root is not None else pid
    except OSError:
        group = pid
    if group == pid:  # the worker leads its group: its members may have left the tree (double fork)
        for p in psutil.process_iter():
            try:
                if p.pid not in found and os.getpgid(p.pid) == group:
                    found[p.pid] = p
            except OSError:
                continue
    found.pop(os.getpid(), None)  # never this process (a caller in the same group)
    return list(found.values())


def snapshot(pid: int) -> list[Any]:
    """The processes :func:`kill_tree` would end now: taken before a worker is asked to exit, since its
    adopted orphans (in sessions of their own) leave its tree when it does."""
    return _tree(pid)


def kill_tree(pid: int, grace_s: float = KILL_GRACE_S, also: list[Any] = ()) -> int:
    """End process ``pid`` with every process it started (see the module docstring), and the processes
    ``also`` lists (a :func:`snapshot`); the number signalled."""
    import psutil

    procs = {p.pid: p for p in also if p.is_running()}
    procs.update({p.pid: p for p in _tree(pid)})
    procs.pop(os.getpid(), None)
    procs = list(procs.values())
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return len(procs)


class OutputTail:
    """One captured stream of a worker: its total size and its last :data:`OUTPUT_TAIL_BYTES` bytes."""

    def __init__(self, limit: int = OUTPUT_TAIL_BYTES):
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        """Start a new cell's capture."""
        self.total = 0
        self._tail = b""

    def feed(self, data: bytes) -> None:
        """Account for ``data``, keeping only the tail."""
        self.total += len(data)
        self._tail = (self._tail + data)[-self.limit:]

    def drain(self, fd: int) -> bool:
        """Read what is waiting on the non-blocking ``fd``; ``False`` once its writers are all gone."""
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            self.feed(data)

    def as_info(self) -> dict | None:
        """``{"bytes": total, "tail": text}`` (the tail decoded as UTF-8, undecodable bytes replaced), or
        ``None`` when nothing was written."""
        if not self.total:
            return None
        return {"bytes": self.total, "tail": self._tail.decode("utf-8", errors="replace"),
                "truncated": self.total > len(self._tail)}

    def last_line(self, chars: int = 300) -> str:
        """The last non-empty line of the tail (for a crash's reason)."""
        lines = [line.strip() for line in self._tail.decode("utf-8", errors="replace").splitlines()]
        lines = [line for line in lines if line]
        return lines[-1][-chars:] if lines else ""
