"""ONNX export measures the model, not the machine: no stack traces, paths or doc strings in the file, and the
same module exported from two install folders is the same bytes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from harness.core.torchio import export_onnx  # noqa: E402

NETS = Path(__file__).resolve().parents[2] / "plugins" / "harness_plugins" / "nets.py"


def _lenet_from(folder: Path, tag: str):
    """A LeNet5 built from a copy of the first-party nets module imported from ``folder``."""
    folder.mkdir(parents=True)
    copy = folder / "nets.py"
    copy.write_text(NETS.read_text())
    name = f"checks_nets_{tag}"
    spec = importlib.util.spec_from_file_location(name, copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        torch.manual_seed(0)
        return module.LeNet5((1, 8, 8), 10)
    finally:
        sys.modules.pop(name, None)


def test_two_install_folders_export_the_same_bytes(tmp_path):
    a = export_onnx(_lenet_from(tmp_path / "site-a" / "deep" / "folder", "a"), tmp_path / "a.onnx", (1, 8, 8))
    b = export_onnx(_lenet_from(tmp_path / "b", "b"), tmp_path / "b.onnx", (1, 8, 8))
    assert a.read_bytes() == b.read_bytes()


def test_the_file_carries_no_export_metadata(tmp_path):
    path = export_onnx(_lenet_from(tmp_path / "src", "c"), tmp_path / "m.onnx", (1, 8, 8))
    data = path.read_bytes()
    assert str(tmp_path).encode() not in data and b"stack_trace" not in data and b"nets.py" not in data
    model = onnx.load(str(path))
    assert all(not n.metadata_props and not n.doc_string for n in model.graph.node)
    assert all(not v.metadata_props for v in [*model.graph.input, *model.graph.value_info, *model.graph.initializer])
    assert not [p.key for p in model.metadata_props if p.key.startswith("pkg.torch.")]
    assert model.producer_name == "pytorch"  # the exporter is named; the machine is not
    onnx.checker.check_model(model)
