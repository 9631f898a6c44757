"""Cache entries on disk: built in a temporary folder, published by one rename, verified when used.

Every entry (an artifact, trained reference weights, a compressed or generated benchmark) is a
folder. :func:`publish` records the sha256 of each of its files in ``sha256.json`` before the
rename; :func:`check_entry` compares them when the entry is used, so a truncated or damaged file is
found instead of failing every later cell. :func:`cached` is the one way to use an entry: verify,
build when absent, rebuild a corrupt entry once (saying so), and fail if the rebuild is corrupt too.

Temporary folders are named ``.KEY.tmp-HOST-PID-xxxx``: a run killed mid-build leaves one behind,
and :func:`clean_stale` removes those whose writer is dead (same host, PID gone) or, when the writer
cannot be told (another host, an older name), that have not changed for :data:`STALE_AFTER_S`.
A concurrent writer's folder is never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.core.errors import HarnessError

#: The file of an entry that records its files' hashes.
HASHES = "sha256.json"

#: A temporary folder whose writer cannot be checked is stale after this long without a change.
STALE_AFTER_S = 6 * 3600.0


class CorruptEntry(HarnessError):
    """A cache entry whose files do not match their recorded hashes (also after one rebuild)."""


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_dir(final: Path) -> Path:
    """A new private folder beside ``final`` to build it in, named after its writer (host, pid)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{_host_tag()}-{os.getpid()}-", dir=final.parent))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != HASHES)


def record_hashes(folder: Path) -> dict[str, str]:
    """Write ``sha256.json`` (every file's sha256, by relative path) into ``folder``; return it."""
    hashes = {name: _sha256(folder / name) for name in _files(folder)}
    (folder / HASHES).write_text(json.dumps(hashes, indent=1, sort_keys=True))
    return hashes


def publish(tmp: Path, final: Path) -> None:
    """Record ``tmp``'s hashes and move it to ``final`` in one rename, so no reader sees half an entry.

    When another process published ``final`` first (the same content, built concurrently), its copy
    is kept and ``tmp`` is removed.
    """
    record_hashes(tmp)
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def check_entry(folder: Path) -> str | None:
    """``None`` when every file of ``folder`` matches ``sha256.json``; else why not (``file: reason``)."""
    try:
        recorded = json.loads((folder / HASHES).read_text())
    except FileNotFoundError:
        return f"{HASHES}: missing (no recorded hashes)"
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{HASHES}: unreadable ({type(exc).__name__})"
    if not isinstance(recorded, dict) or not recorded:
        return f"{HASHES}: not a mapping of file hashes"
    for name, want in sorted(recorded.items()):
        path = folder / name
        if not path.is_file():
            return f"{name}: missing"
        if _sha256(path) != want:
            return f"{name}: sha256 mismatch"
    extra = sorted(set(_files(folder)) - set(recorded))
    if extra:
        return f"{extra[0]}: not recorded in {HASHES}"
    return None


def discard(folder: Path) -> None:
    """Remove an entry: renamed aside first, so a reader never sees it half deleted."""
    aside = folder.with_name(f".{folder.name}.tmp-{_host_tag()}-{os.getpid()}-discard{time.time_ns()}")
    try:
        os.replace(folder, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _writer_alive(name: str) -> bool | None:
    """Whether the writer of a temporary folder runs: ``None`` when its name cannot tell."""
    _, sep, tail = name.rpartition(".tmp-")
    parts = tail.split("-")
    if not sep or len(parts) < 3 or parts[0] != _host_tag() or not parts[1].isdigit():
        return None
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def clean_stale(parent: Path, *, now: float | None = None) -> list[str]:
    """Remove temporary folders under ``parent`` left by dead writers; return their names."""
    removed: list[str] = []
    try:
        children = list(os.scandir(parent))
    except OSError:
        return removed
    now = time.time() if now is None else now
    for child in children:
        if not child.name.startswith(".") or not child.is_dir(follow_symlinks=False):
            continue
        alive = _writer_alive(child.name)
        if alive is None:
            try:
                alive = now - child.stat(follow_symlinks=False).st_mtime < STALE_AFTER_S
            except OSError:
                continue
        if not alive:
            shutil.rmtree(child.path, ignore_errors=True)
            removed.append(child.name)
    return removed


def cached(final: Path, build: Callable[[Path], None], notes: list[str] | None = None,
           *, what: str = "cache entry") -> Path:
    """The verified cache entry ``final``: built by ``build(tmp)`` when absent, rebuilt once when corrupt.

    ``notes`` gets one line per rebuild (``cache entry KEY was corrupt (file: sha256 mismatch),
    rebuilt``) for the cell's info. Raises :class:`CorruptEntry` when the rebuilt entry does not
    verify either (the disk, or something else writing there, damages it).
    """
    clean_stale(final.parent)
    if final.is_dir():
        why = check_entry(final)
        if why is None:
            return final
        discard(final)
        if notes is not None:
            notes.append(f"{what} {final.name} was corrupt ({why}), rebuilt")
    tmp = temp_dir(final)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, final)
    why = check_entry(final)
    if why is not None:
        raise CorruptEntry(f"{what} {final.name} is corrupt again after a rebuild ({why}): something damages "
                           f"files under {final.parent}")
    return final
