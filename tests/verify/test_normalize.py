"""ONNX normalization before verifiers read a network: an export's Identity nodes on constants folded
away, initializers listed as inputs (ACAS Xu, IR 3) made constants, the function unchanged (onnxruntime
on both files); the benchmark reader hands every verifier and the replay one normalized copy, named
as the original and identified by the original's sha256."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from harness.core.identity import file_sha256
from harness.verify.benchmarks import read_folder
from harness.verify.normalize import normalize_file, normalized
from harness.verify.replay import Network

ACASXU = Path(__file__).resolve().parents[1] / "data" / "vnncomp2021" / "acasxu"
NETWORK = ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx"


@pytest.fixture(scope="module")
def identity_onnx(tmp_path_factory) -> Path:
    import torch
    from torch import nn

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.register_buffer("a", torch.ones(4))
            self.register_buffer("b", torch.ones(4))  # equal values: one initializer, and an Identity

        def forward(self, x):
            return torch.relu(self.fc(x) * self.a) + self.b

    path = tmp_path_factory.mktemp("export") / "shared.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Shared().eval(), (torch.zeros(1, 3),), str(path), dynamo=False)
    return path


def same_function(a: Path, b: Path, n_inputs: int) -> float:
    x = np.random.default_rng(0).uniform(-1, 1, (16, n_inputs))
    ra, rb = Network(a), Network(b)
    return float(max(np.abs(ra(v) - rb(v)).max() for v in x))


def test_identity_on_constants_is_folded_away(identity_onnx, tmp_path):
    assert "Identity" in {n.op_type for n in onnx.load(str(identity_onnx)).graph.node}
    out = normalize_file(identity_onnx, tmp_path / "n.onnx")
    assert "Identity" not in {n.op_type for n in onnx.load(str(out)).graph.node}
    assert same_function(identity_onnx, out, 3) == 0.0


def test_acasxu_initializers_listed_as_inputs_become_constants(tmp_path):
    original = onnx.load(str(NETWORK))
    assert original.ir_version == 3 and len(original.graph.input) > 1  # weights listed among the inputs
    out = onnx.load(str(normalize_file(NETWORK, tmp_path / "n.onnx")))
    assert [i.name for i in out.graph.input] == ["input"]
    assert same_function(NETWORK, tmp_path / "n.onnx", 5) == 0.0


def test_an_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a model")
    with pytest.raises(ValueError, match="bad.onnx: not a readable ONNX file"):
        normalize_file(bad, tmp_path / "out.onnx")


def test_the_benchmark_reader_hands_out_one_normalized_copy(tmp_path):
    folder = tmp_path / "acasxu"
    folder.mkdir()
    for name in (NETWORK.name, "prop_2.vnnlib", "prop_6.vnnlib"):
        shutil.copyfile(ACASXU / name, folder / name)
    (folder / "instances.csv").write_text(f"{NETWORK.name},prop_2.vnnlib,60\n{NETWORK.name},prop_6.vnnlib,60\n")
    bench = read_folder(folder, tmp_path / "cache")
    first, second = bench.instances
    assert first.onnx == second.onnx != folder / NETWORK.name  # one copy for every instance of the network
    assert first.onnx.name == NETWORK.name and first.onnx.is_relative_to(tmp_path / "cache")
    assert first.source == folder / NETWORK.name and first.sha256 == file_sha256(NETWORK)
    assert [i.name for i in onnx.load(str(first.onnx)).graph.input] == ["input"]
    again = normalized(folder / NETWORK.name, tmp_path / "cache")
    assert again == first.onnx  # cached by the original's sha256
