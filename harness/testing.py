"""Pytest fixtures for plugin authors and the project's own tests.

Opt in with ``pytest_plugins = ["harness.testing"]`` in a ``conftest.py``. Every fixture is
documented in ``docs/testing.md``:

- plugin hosts: ``plugin_manager`` (a fresh, empty pluggy manager), ``harness_host`` (load a
  host with extra plugins), ``harness_plugin`` (register the plugin under test, unregistered
  at teardown), ``plugin_dir`` (plugin files for ``--plugins-dir``);
- toy data: ``toy_splits``, ``toy_model``, ``toy_apply_context``, ``toy_artifact``, ``toy_vnnlib``
  (the model, dataset and artifact ``harness check-plugin`` uses; see :mod:`harness.devkit.toy`);
- ``conformance``: the ``harness check-plugin`` contracts on a plugin, as a :class:`Report`;
- ``memory_store``: a migrated in-memory leaderboard; ``suite_file``: write suite files;
- ``harness_cli``: the real CLI in a subprocess, with a private cache.

Nothing here imports torch until a fixture that needs it runs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest


@pytest.fixture
def harness_host():
    """``load(*plugins, plugins_dir=None, entry_points=True)`` -> a freshly loaded :class:`harness.plugin.manager.Host`.

    Each ``plugins`` item is ``(name, module_or_object)``; nothing leaks between tests because
    every call builds a new plugin manager.
    """
    from harness.plugin.manager import load_host

    def load(*plugins, plugins_dir=None, entry_points=True):
        return load_host(plugins_dir, entry_points_enabled=entry_points, extra=plugins)

    return load


def run_verifier(spec: Any, params: dict, onnx_path: Any, vnnlib_path: Any, timeout_s: float, **options: Any):
    """Run a verifier as the host does, in its own process, killed with its children past ``timeout_s``.

    The same call the verification suite makes (:func:`harness.verify.process.run_verifier`): returns
    the :class:`harness.api.Verdict`; ``options`` are its keywords (``workdir``, ``plugins_dir``, ``grace_s``).
    """
    from harness.verify.process import run_verifier as run

    return run(spec, params, onnx_path, vnnlib_path, timeout_s, **options)


@pytest.fixture
def plugin_manager():
    """A fresh ``pluggy.PluginManager`` with the harness's hook specifications and nothing registered."""
    from harness.plugin.manager import get_plugin_manager

    return get_plugin_manager()


@pytest.fixture
def harness_plugin():
    """``register(plugin, name=None, *, entry_points=True) -> Host``: the plugin under test, registered.

    ``plugin`` is a module, a module name or any object with ``@hookimpl`` functions. It is
    registered on a fresh plugin manager beside the built-in suites (and, with
    ``entry_points``, the installed plugins: an installed entry point of the same module is
    left out, so nothing registers twice). ``name`` defaults to that entry point's name, else
    the module's. Registration errors surface as :class:`harness.plugin.manager.PluginError`, exactly
    as ``harness plugins`` reports them. Every plugin registered through the fixture is
    unregistered at teardown.
    """
    import importlib
    from importlib.metadata import entry_points as installed_entry_points

    from harness.plugin.manager import ENTRY_POINT_GROUP, load_host

    hosts: list[tuple[Any, str]] = []

    def register(plugin: Any, name: str | None = None, *, entry_points: bool = True):
        if isinstance(plugin, str):
            plugin = importlib.import_module(plugin)
        modname = getattr(plugin, "__name__", None)
        installed = [ep.name for ep in installed_entry_points(group=ENTRY_POINT_GROUP) if ep.value == modname]
        name = name or (installed[0] if installed else (modname or type(plugin).__name__))
        host = load_host(entry_points_enabled=entry_points, extra=[(name, plugin)], exclude=installed)
        hosts.append((host, name))
        return host

    yield register
    for host, name in hosts:
        if host.pm.get_plugin(name) is not None:
            host.pm.unregister(name=name)


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


# --------------------------------------------------------------------------- toy data


@pytest.fixture(scope="session")
def toy_splits():
    """The ``toy-blobs`` dataset (:class:`harness.api.Splits`): 4 classes of 1x8x8 images, 128/32/64."""
    from harness.devkit.toy import load_blobs

    return load_blobs()


def _toy_host():
    from harness.devkit import toy
    from harness.plugin.manager import load_host

    return load_host(entry_points_enabled=False, extra=[(toy.PLUGIN_NAME, toy)])


@pytest.fixture
def toy_model(toy_splits):
    """``make(trained=True, seed=0) -> torch.nn.Module``: a fresh ``toy-cnn`` for ``toy_splits``.

    Seeded as the harness seeds it; ``trained`` runs its ten-epoch recipe (about 0.1 s).
    """
    from harness.core.torchio import seed_everything
    from harness.devkit import toy
    from harness.plugin.specs import ModelContext

    def make(trained: bool = True, seed: int = 0):
        ctx = ModelContext(params={}, input_shape=toy_splits.input_shape, num_classes=toy_splits.num_classes,
                           seed=seed, splits=toy_splits)
        seed_everything(seed)
        module = toy.build_cnn(ctx)
        if trained:
            seed_everything(seed)
            toy.train_cnn(module, ctx)
        return module.eval()

    return make


@pytest.fixture
def toy_apply_context(toy_model, toy_splits, tmp_path):
    """``make(params, seed=0) -> ApplyContext``: what the host hands a method's ``apply``.

    The module is a freshly trained ``toy-cnn``, the dataset ``toy_splits``, the workdir a new
    empty folder, and ``export_onnx`` the host's own exporter.
    """
    from harness.core.torchio import export_onnx
    from harness.plugin.specs import ApplyContext

    counter = iter(range(1_000_000))

    def make(params: dict, seed: int = 0):
        workdir = tmp_path / f"apply{next(counter)}"
        workdir.mkdir()
        shape = tuple(toy_splits.input_shape)
        return ApplyContext(module=toy_model(seed=seed), params=dict(params), seed=seed, splits=toy_splits,
                            workdir=workdir, input_shape=shape,
                            export_onnx=lambda module, path: export_onnx(module, path, shape))

    return make


@pytest.fixture
def toy_artifact(tmp_path, toy_splits):
    """The uncompressed ``toy-cnn`` artifact (torch and ONNX formats), built by the host's own builder."""
    from harness.build.artifacts import build_artifact
    from harness.devkit import toy

    cell = {"model": {"name": toy.MODEL, "params": {}}, "dataset": {"name": toy.DATASET, "params": {}},
            "method": {"name": toy.METHOD, "params": {}}, "seed": 0}
    return build_artifact(_toy_host().registry, cell, toy_splits, tmp_path / "artifact-cache")


@pytest.fixture
def toy_vnnlib(tmp_path):
    """A network with known answers and two VNN-LIB properties, for verifier tests.

    Attributes: ``onnx`` (a Gemm network, 4 inputs, 2 outputs), ``violated`` and ``holds``
    (``.vnnlib`` paths), and ``run(x) -> list`` (the network's outputs in onnxruntime).
    """
    from harness.devkit.conformance.verifier import HOLDS, VIOLATED, replay, write_network

    onnx_path = write_network(tmp_path / "linear.onnx")
    paths = {}
    for name, prop in (("violated", VIOLATED), ("holds", HOLDS)):
        paths[name] = tmp_path / f"{name}.vnnlib"
        paths[name].write_text(prop.text())
    return SimpleNamespace(onnx=onnx_path, violated=paths["violated"], holds=paths["holds"],
                           run=lambda x: replay(onnx_path, list(x)))


@pytest.fixture
def conformance(tmp_path):
    """``check(plugin, **options) -> Report``: the ``harness check-plugin`` contracts on ``plugin``.

    ``plugin`` is a module (object or name), a distribution or a ``.py`` file; ``options`` are
    those of :class:`harness.devkit.conformance.Options` (``model``, ``dataset``, ``params``) plus
    ``isolate`` (default True: each thing in a worker process) and ``timeout_s``. The cache is
    private to the test. ``report.ok`` is true when no clause failed; ``report.text()`` says why.
    """
    from harness.devkit.conformance import Options, check_plugin

    def check(plugin: ModuleType | str, *, isolate: bool = True, timeout_s: float = 300.0, **options: Any):
        opts = Options(cache_dir=str(tmp_path / "conformance-cache"), **options)
        return check_plugin(plugin, options=opts, isolate=isolate, timeout_s=timeout_s)

    return check


# --------------------------------------------------------------------------- store and CLI


@pytest.fixture
def memory_store():
    """A fully migrated in-memory leaderboard (:class:`harness.store.db.Store`)."""
    from harness.store.db import Store

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

    from harness.core.paths import CACHE_ENV

    cache = tmp_path / "cache"

    def run(*args, env=None, timeout=600, cwd=None):
        full_env = dict(os.environ)
        full_env[CACHE_ENV] = str(cache)  # never a cache the caller set up
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                              text=True, env=full_env, timeout=timeout, cwd=cwd or tmp_path)

    return run
