"""The distribution's wiring: entry points, hook registration, and cheap imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "plugins" / "pyproject.toml"

ENTRY_POINTS = {
    "models": "harness_plugins.models",
    "datasets": "harness_plugins.datasets",
    "pruning": "harness_plugins.pruning",
    "quantization": "harness_plugins.quantization",
    "saliency": "harness_plugins.saliency",
    "patterns": "harness_plugins.patterns",
    "structured": "harness_plugins.structured",
    "retraining": "harness_plugins.retraining",
    "weight-quantization": "harness_plugins.weight_quantization",
    "lowrank": "harness_plugins.lowrank",
    "lrp": "harness_plugins.lrp",
    "tensor-train": "harness_plugins.tensor_train",
    "torch-cpu": "harness_plugins.backends.torch_cpu",
    "onnxruntime-cpu": "harness_plugins.backends.onnxruntime_cpu",
    "torch-cuda": "harness_plugins.backends.torch_cuda",
    "wasm": "harness_plugins.backends.wasm",
    "arm": "harness_plugins.backends.arm",
    "transformers": "harness_plugins.transformer_models",
    "text": "harness_plugins.text",
    "vision": "harness_plugins.vision",
    "onnx-file": "harness_plugins.onnx_model",
    "verifiers": "harness_plugins.verifiers",
}

EXPECTED = {
    "models": {"mlp", "lenet5", "resnet-small", "wide-mlp", "vit-tiny", "resnet18", "resnet50", "mobilenet_v2",
               "hf-encoder", "hf-classifier", "hf-causal-lm", "tiny-lm", "onnx-file"},
    "datasets": {"digits", "synthetic", "imagefolder", "text-lm", "text-embedding", "text-classification",
                 "cifar10", "mnist"},
    "methods": {"random", "global-magnitude", "layer-magnitude", "int8-dynamic", "int8-static", "gradient",
                "wanda", "n-m", "block", "channel-l1", "finetune", "lottery-ticket", "kbit", "splitquant",
                "mixed-precision", "svd", "matmul-nbits", "lrp-mixed-precision",
                "tensor-train"},
    "backends": {"torch-cpu", "torch-sparse-cpu", "onnxruntime-cpu", "torch-cuda", "torch-cuda-kernels", "wasm", "arm"},
    "verifiers": {"ibp", "crown", "milp", "pgd", "unsound-pgd", "marabou"},
}

HEAVY = ("torch", "onnxruntime", "onnx", "onnxscript", "sklearn", "numpy", "PIL", "scipy", "torch_pruning",
         "transformers", "tokenizers", "safetensors")


def test_pyproject_entry_points():
    """pyproject.toml declares one ``harness`` entry point per plugin module."""
    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["project"]["name"] == "harness-plugins"
    assert data["project"]["entry-points"]["harness"] == ENTRY_POINTS
    deps = data["project"]["dependencies"]
    assert "compression-harness" in deps
    # torch is a lower bound, never an exact pin.
    assert any(d.startswith("torch>=") for d in deps) and not any(d.startswith("torch==") for d in deps)


def test_installed_entry_points_match():
    """When the distribution is installed, its metadata carries the same entry points."""
    from importlib import metadata

    try:
        dist = metadata.distribution("harness-plugins")
    except metadata.PackageNotFoundError:
        pytest.skip("harness-plugins is not installed")
    eps = {ep.name: ep.value for ep in dist.entry_points if ep.group == "harness"}
    assert eps == ENTRY_POINTS


def test_hooks_register_valid_specs(plugin_manager):
    """Every module registers through its hook, and every spec passes its own check."""
    import importlib

    pm = plugin_manager
    for name, module in ENTRY_POINTS.items():
        pm.register(importlib.import_module(module), name=name)
    for kind, expected in EXPECTED.items():
        specs = []
        getattr(pm.hook, f"harness_register_{kind}")(register=specs.append)
        for spec in specs:
            spec.check()
        assert {s.name for s in specs} == expected


def test_import_is_light():
    """Importing every plugin module pulls in none of the heavy libraries (fresh interpreter)."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(ENTRY_POINTS.values())!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(h for h in {list(HEAVY)!r} if h in sys.modules)))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_every_method_names_its_source(plugin_manager):
    """Each method (the dense baseline is built into the host) names the paper or library it follows in
    ``MethodSpec.source``, the module or function docstring names it too (by its first author), and it
    declares claims."""
    import importlib

    pm = plugin_manager
    for name, module in ENTRY_POINTS.items():
        pm.register(importlib.import_module(module), name=name)
    specs = []
    pm.hook.harness_register_methods(register=specs.append)
    for spec in specs:
        assert spec.claims is not None, spec.name
        assert any(ch.isdigit() for ch in spec.source), f"{spec.name}: no year in its source"
        docs = (sys.modules[spec.apply.__module__].__doc__ or "") + (spec.apply.__doc__ or "")
        first = spec.source.split()[0].rstrip(",;")
        assert first in docs, f"{spec.name}: its docstrings do not name {first}"
