"""harness.core.files: hashed, atomically published cache entries, rebuilt once, stale temp folders removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness.core.files import (
    HASHES,
    CorruptEntry,
    _host_tag,
    cached,
    check_entry,
    clean_stale,
    publish,
    temp_dir,
)


def _writer(text="data"):
    calls = []

    def build(tmp):
        calls.append(tmp)
        (tmp / "a.bin").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text("{}")

    return build, calls


def test_an_entry_is_built_once_then_verified_and_reused(tmp_path):
    build, calls = _writer()
    final = tmp_path / "entries" / "k1"
    assert cached(final, build) == final
    assert set(json.loads((final / HASHES).read_text())) == {"a.bin", "sub/b.json"}
    notes: list[str] = []
    cached(final, build, notes)
    assert len(calls) == 1 and notes == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "extra", "hashes", "no-hashes"])
def test_a_damaged_entry_is_rebuilt_once_and_the_note_says_why(tmp_path, damage):
    build, calls = _writer("0123456789")
    final = tmp_path / "k"
    cached(final, build)
    target = final / "a.bin"
    if damage == "truncate":
        target.write_text("01234")
    elif damage == "flip":
        target.write_text("0123456780")
    elif damage == "delete":
        target.unlink()
    elif damage == "extra":
        (final / "planted.py").write_text("print('x')")
    elif damage == "hashes":
        (final / HASHES).write_text("{not json")
    else:
        (final / HASHES).unlink()
    assert check_entry(final) is not None
    notes: list[str] = []
    cached(final, build, notes, what="cache entry")
    assert len(calls) == 2 and check_entry(final) is None
    assert len(notes) == 1 and notes[0].startswith("cache entry k was corrupt (") and notes[0].endswith("), rebuilt")
    assert not (final / "planted.py").exists()


def test_a_rebuild_that_is_corrupt_again_fails_with_the_reason(tmp_path):
    """While this writer rebuilt, another one published a damaged copy first: publishing keeps the
    other copy, which fails verification, so the entry is not used."""
    final = tmp_path / "k"
    good, _ = _writer()
    cached(final, good)
    (final / "a.bin").write_text("damaged")

    def build_racing(tmp):
        good(tmp)
        other = temp_dir(final)
        (other / "a.bin").write_text("theirs")
        (other / HASHES).write_text(json.dumps({"a.bin": "0" * 64}))
        os.replace(other, final)  # the other writer's publish lands before ours

    notes: list[str] = []
    with pytest.raises(CorruptEntry, match=r"corrupt again after a rebuild \(a.bin: sha256 mismatch\)"):
        cached(final, build_racing, notes)
    assert notes and "was corrupt (a.bin: sha256 mismatch)" in notes[0]


def test_a_failed_build_leaves_no_temp_folder(tmp_path):
    def boom(tmp):
        (tmp / "half").write_text("x")
        raise RuntimeError("apply failed")

    with pytest.raises(RuntimeError):
        cached(tmp_path / "k", boom)
    assert list(tmp_path.iterdir()) == []


def test_publishing_onto_an_existing_entry_keeps_the_first(tmp_path):
    final = tmp_path / "k"
    first, second = temp_dir(final), temp_dir(final)
    (first / "a").write_text("1")
    (second / "a").write_text("2")
    publish(first, final)
    publish(second, final)
    assert (final / "a").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_clean_stale_removes_dead_writers_and_old_unknown_ones_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = _host_tag()
    names = {
        f".k1.tmp-{tag}-{dead.pid}-x": False,  # dead writer on this host: removed
        f".k2.tmp-{tag}-{os.getpid()}-x": True,  # live writer (this process): kept
        ".k3.tmp-00000000-1-x": True,  # another host, recent: kept
        ".k4.1700000000": True,  # an older name, recent: kept
        ".k5.1700000001": False,  # an older name, unchanged for a day: removed
        "k6": True,  # an entry, not a temporary folder
    }
    for name in names:
        (tmp_path / name).mkdir()
    old = time.time() - 24 * 3600
    os.utime(tmp_path / ".k5.1700000001", (old, old))
    removed = clean_stale(tmp_path)
    assert sorted(removed) == sorted(n for n, keep in names.items() if not keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, keep in names.items() if keep)
