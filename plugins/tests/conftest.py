"""Shared fixtures for the first-party plugin tests: digits, exports, trained models, artifacts.

The tests use only the public objects of ``harness.api`` (and the trainer), as the host
would hand them to the plugins; no host internals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.api import ApplyContext, Artifact, DatasetContext, ModelContext, Splits

# The fixtures plugin authors get (harness_host, suite_file, harness_cli, ...), as the host's tests use them.
pytest_plugins = ["harness.testing", "pytester"]


def defaults(spec: Any, **overrides: Any) -> dict:
    """A complete parameter dict for ``spec``: declared defaults, then ``overrides``."""
    values = {p.name: p.default for p in spec.params if not p.required}
    values.update(overrides)
    return values


def export_onnx(module: Any, path: Path) -> Path:
    """Export like the host does: dynamo, one file, a dynamic batch dimension."""
    import torch

    x = torch.zeros(2, *module_input_shape(module))
    torch.onnx.export(module.eval(), (x,), str(path), dynamo=True, external_data=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    return Path(path)


def module_input_shape(module: Any) -> tuple[int, ...]:
    """The per-sample input shape the tests attach to the modules they export."""
    return tuple(getattr(module, "_test_input_shape", (1, 8, 8)))


@pytest.fixture(scope="session")
def digits() -> Splits:
    """The digits dataset, loaded once."""
    from harness_plugins.datasets import DIGITS

    return DIGITS.load(DatasetContext(params={}, cache_dir=Path("/nonexistent-cache")))


@pytest.fixture(scope="session")
def model_ctx(digits: Splits) -> Callable[..., ModelContext]:
    """A factory of model contexts on digits."""

    def make(spec: Any, seed: int = 0, **params: Any) -> ModelContext:
        return ModelContext(params=defaults(spec, **params), input_shape=digits.input_shape,
                            num_classes=digits.num_classes, seed=seed, splits=digits)

    return make


def build(spec: Any, ctx: ModelContext) -> Any:
    """Build like the host does: seed torch first."""
    import torch

    torch.manual_seed(ctx.seed)
    return spec.build(ctx)


@pytest.fixture(scope="session")
def trained_lenet5(model_ctx: Callable[..., ModelContext]) -> Any:
    """lenet5 trained with its reference recipe on digits (seed 0), in eval mode."""
    from harness_plugins.models import LENET5

    ctx = model_ctx(LENET5)
    module = build(LENET5, ctx)
    LENET5.train(module, ctx)
    return module.eval()


@pytest.fixture(scope="session")
def trained(model_ctx: Callable[..., ModelContext], trained_lenet5: Any) -> Callable[[str], Any]:
    """``trained(name)``: mlp, lenet5 or resnet-small trained with its reference recipe on digits (seed 0),
    once per session. Methods get a deep copy, so the cached module stays dense."""
    from harness_plugins.models import MLP, RESNET_SMALL

    cache = {"lenet5": trained_lenet5}

    def get(name: str) -> Any:
        if name not in cache:
            spec = {"mlp": MLP, "resnet-small": RESNET_SMALL}[name]
            ctx = model_ctx(spec)
            module = build(spec, ctx)
            spec.train(module, ctx)
            cache[name] = module.eval()
        return cache[name]

    return get


def layers(module: Any) -> list:
    """The Conv2d and Linear layers of a module, in module order."""
    import torch

    return [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def weight_sparsity(module: Any) -> float:
    """Share of zeros over the conv and linear weights (the pruning methods' claimed scope)."""
    weights = [m.weight for m in layers(module)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def predictions(module: Any, x: Any) -> Any:
    """Top-1 predictions of a torch module on numpy inputs."""
    import torch

    with torch.no_grad():
        return module.eval()(torch.from_numpy(x)).argmax(1).numpy()


def agreement(a: Any, b: Any, x: Any) -> float:
    """Share of inputs on which two torch modules predict the same class."""
    return float((predictions(a, x) == predictions(b, x)).mean())


@pytest.fixture
def apply_ctx(digits: Splits, tmp_path: Path) -> Callable[..., ApplyContext]:
    """A factory of method contexts on digits, with a fresh workdir each."""
    counter = iter(range(1_000_000))

    def make(module: Any, params: dict, seed: int = 0) -> ApplyContext:
        workdir = tmp_path / f"work{next(counter)}"
        workdir.mkdir()
        return ApplyContext(module=module, params=params, seed=seed, splits=digits, workdir=workdir,
                            input_shape=digits.input_shape, export_onnx=export_onnx)

    return make


def make_artifact(folder: Path, module: Any = None, onnx_file: Path | None = None,
                  input_shape: tuple[int, ...] = (1, 8, 8), export: bool = True, **manifest_extra: Any) -> Artifact:
    """An artifact folder holding ``module.pt`` and/or ``model.onnx`` (``export=False``: no ONNX export of
    the module), opened with ``Artifact.open``; ``manifest_extra`` (``encodings``, ``analysis``, ...) goes
    into its manifest."""
    import shutil

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    formats = []
    if module is not None:
        torch.save(module, folder / "module.pt")
        formats.append("torch")
        if onnx_file is None and export:
            export_onnx(module, folder / "model.onnx")
            formats.append("onnx")
    if onnx_file is not None:
        shutil.copyfile(onnx_file, folder / "model.onnx")
        formats.append("onnx")
    manifest = {"key": "test", "formats": formats, "input_shape": list(input_shape), **manifest_extra}
    (folder / "artifact.json").write_text(json.dumps(manifest))
    return Artifact.open(folder)


@pytest.fixture(scope="session")
def h() -> Any:
    """The helper functions above, as a fixture: robust to any pytest import mode."""
    from types import SimpleNamespace

    return SimpleNamespace(defaults=defaults, export_onnx=export_onnx, build=build,
                           make_artifact=make_artifact, layers=layers, weight_sparsity=weight_sparsity,
                           predictions=predictions, agreement=agreement)
