"""One driver per run: an OS file lock beside the database, held from "find or create the run" to the end.

A run is named by its suite file's content hash and tag (what resuming matches), so the lock file
is ``<db>.run-<digest>.lock``; different suites on one database take different locks and run side
by side. The lock is ``flock`` (exclusive, non-blocking): the kernel drops it when its holder
exits, however it exits (``kill -9`` included), so a dead driver's lock is simply taken over; the
file's text (pid, host, since) is only there to name the holder in the refusal. Worker processes
are spawned (never forked), so they never inherit the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from harness.core.clock import now
from harness.core.errors import UsageError
from harness.core.identity import digest


class RunLocked(UsageError, BlockingIOError):
    """Another driver holds the run: the message names its pid, host and start."""


def lock_path(db: str | Path, suite_sha256: str, tag: str | None) -> Path:
    """The lock file of the run of ``suite_sha256`` with ``tag`` in ``db``."""
    return Path(f"{db}.run-{digest({'suite_sha256': suite_sha256, 'tag': tag})[:16]}.lock")


class RunLock:
    """The lock of one run; :meth:`acquire` or raise :class:`RunLocked`, :meth:`release` (also on exit)."""

    def __init__(self, db: str | Path, suite_sha256: str, tag: str | None = None, *, path: Path | None = None,
                 wait: bool = False) -> None:
        self.path = path or lock_path(db, suite_sha256, tag)
        self.wait = wait
        self.previous: dict | None = None  # the holder named in the file when this driver took it over
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLocked` naming the driver that holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise RunLocked(
                    f"another driver is running this suite file into this database: "
                    f"{_describe(holder)} (lock {self.path}); wait for it to finish, or stop it, then run "
                    f"again to resume", file=str(self.path)) from None
            # The file may have been removed by its last holder between our open and our lock: then
            # the lock is on a name nobody else sees, so start again on the current file.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read(fd)
        self.previous = previous or None  # a driver that died holding it (its pid is gone) left this
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now()}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the file and drop the lock (in that order, so nobody locks a removed file unseen)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def migration_lock(db: str | Path) -> RunLock:
    """A short lock around opening ``db`` for writing (its migrations): two writers that open a new
    database at the same instant would both apply the first migration. The second waits."""
    return RunLock(db, "", path=Path(f"{db}.migrate.lock"), wait=True)


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "a driver that is starting (pid not yet written)"
    return f"pid {holder['pid']} on host {holder.get('host', '?')}, since {holder.get('since', '?')}"


def describe_previous(previous: dict | None) -> str | None:
    """``a driver that stopped (pid 123 on host h, ...)`` for a lock taken over, or ``None``."""
    if not previous or not previous.get("pid"):
        return None
    return f"took over the run from a driver that stopped without releasing it ({_describe(previous)})"
