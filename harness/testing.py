"""Pytest fixtures for plugin authors and the project's own tests.

Opt in with ``pytest_plugins = ["harness.testing"]`` in a ``conftest.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def harness_host():
    """``load(*plugins, plugins_dir=None, entry_points=True)`` -> a freshly loaded :class:`harness.plugins.Host`.

    Each ``plugins`` item is ``(name, module_or_object)``; nothing leaks between tests because
    every call builds a new plugin manager.
    """
    from harness.plugins import load_host

    def load(*plugins, plugins_dir=None, entry_points=True):
        return load_host(plugins_dir, entry_points_enabled=entry_points, extra=plugins)

    return load


@pytest.fixture
def plugin_dir(tmp_path):
    """``write(name, source) -> Path``: write a plugin file into a fresh plugins directory.

    The directory is ``plugin_dir.path``; pass it as ``--plugins-dir``.
    """
    folder = tmp_path / "plugins"
    folder.mkdir()

    class _Dir:
        path = folder

        @staticmethod
        def write(name: str, source: str) -> Path:
            f = folder / f"{name}.py"
            f.write_text(textwrap.dedent(source))
            return f

    return _Dir()


@pytest.fixture
def suite_file(tmp_path):
    """``write(text, name="suite.toml") -> Path``: write a suite file."""

    def write(text: str, name: str = "suite.toml") -> Path:
        f = tmp_path / name
        f.write_text(textwrap.dedent(text))
        return f

    return write


@pytest.fixture
def memory_store():
    """A fully migrated in-memory leaderboard (:class:`harness.store.Store`)."""
    from harness.store import Store

    store = Store(":memory:")
    yield store
    store.close()


@pytest.fixture
def harness_cli(tmp_path):
    """``run(*args, env=None, timeout=600) -> CompletedProcess``: the real ``harness`` CLI in a subprocess.

    Runs ``python -m harness.cli`` with this interpreter, in ``tmp_path``, with a private
    cache directory, so each test sees a real process (exit codes, crashes, signals).
    """
    import os

    cache = tmp_path / "cache"

    def run(*args, env=None, timeout=600, cwd=None):
        full_env = dict(os.environ)
        full_env["HARNESS_CACHE_DIR"] = str(cache)  # never a cache the caller set up
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                              text=True, env=full_env, timeout=timeout, cwd=cwd or tmp_path)

    return run
