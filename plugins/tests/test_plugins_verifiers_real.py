"""The built-in verifiers on real files: a plain ``torch.onnx.export`` with ``Identity`` nodes on shared
constant initializers, verified by every built-in verifier (the graph is normalized first); real
ACAS Xu networks of VNN-COMP 2021 (committed copies) read as onnxruntime runs them; prop_6's input
disjunction verified box by box; a counterexample on ACAS Xu that replays."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from harness.api import Atom, Property, ReplayNetwork, check_witness
from harness.api import load_vnnlib as load
from harness.api import validate_params as validate
from harness.testing import run_verifier
from harness_plugins.verifiers import CROWN, IBP, MILP, PGD, UNSOUND_PGD
from harness_plugins.verifiers.network import Unsupported, load_network, read_model

ACASXU = Path(__file__).resolve().parents[2] / "tests" / "data" / "vnncomp2021" / "acasxu"


class SharedConstants(nn.Module):
    """Two buffers with equal values: the TorchScript exporter keeps one initializer and an ``Identity``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 6), nn.Linear(6, 2)
        self.register_buffer("scale", torch.full((6,), 0.5))
        self.register_buffer("shift", torch.full((6,), 0.5))

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x) * self.scale + self.shift))


@pytest.fixture(scope="module")
def identity_onnx(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("identity") / "shared.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, and still what many tools use
        torch.onnx.export(SharedConstants().eval(), (torch.zeros(1, 3),), str(path), dynamo=False)
    return path


def write(path: Path, lower, upper, unsafe) -> Property:
    prop = Property(lower=tuple(map(float, lower)), upper=tuple(map(float, upper)), num_outputs=2, unsafe=unsafe)
    path.write_text(prop.text())
    return prop


def test_the_export_carries_identity_on_a_constant(identity_onnx):
    graph = onnx.load(str(identity_onnx)).graph
    constants = {i.name for i in graph.initializer}
    assert any(n.op_type == "Identity" and n.input[0] in constants for n in graph.node)
    with pytest.raises(Unsupported, match="operator Identity on constants or shapes"):
        read_model(onnx.load(str(identity_onnx)))  # the graph as exported: what every verifier rejected


def test_the_normalized_export_computes_what_onnxruntime_computes(identity_onnx):
    net = load_network(identity_onnx)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 3))
    replay = ReplayNetwork(identity_onnx)
    assert np.abs(net.forward(x) - np.stack([replay(v) for v in x])).max() < 1e-5


def test_every_builtin_verifier_verifies_the_export(identity_onnx, tmp_path):
    net = load_network(identity_onnx)
    grid = np.random.default_rng(1).uniform(-1, 1, (4000, 3))
    top = float(net.forward(grid)[:, 0].max())
    holds = tmp_path / "holds.vnnlib"
    write(holds, (-1, -1, -1), (1, 1, 1), ((Atom(abs(top) * 10 + 10, "Y_0"),),))  # Y_0 never that large
    for spec in (IBP, CROWN, MILP):
        v = run_verifier(spec, {}, identity_onnx, holds, 60.0, workdir=tmp_path / f"h-{spec.name}")
        assert v.result == "holds", (spec.name, v.result, v.error)
    violated = tmp_path / "violated.vnnlib"
    prop = write(violated, (-1, -1, -1), (1, 1, 1), ((Atom(top - 1e-3, "Y_0"),),))  # the grid's best is a witness
    for spec in (MILP, PGD, UNSOUND_PGD):
        params = validate(spec.params, {"restarts": 20, "steps": 50} if any(p.name == "restarts" for p in spec.params)
                              else {})
        v = run_verifier(spec, params, identity_onnx, violated, 60.0, workdir=tmp_path / f"v-{spec.name}")
        assert v.result == "violated", (spec.name, v.result, v.error)
        assert check_witness(identity_onnx, prop, v.witness).valid


def test_a_real_acasxu_network_reads_as_onnxruntime_runs_it():
    onnx_path = ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx"
    net = load_network(onnx_path)
    assert (net.n_inputs, net.n_outputs) == (5, 5) and sum(type(op).__name__ == "Relu" for op in net.ops) == 6
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (32, 5))
    replay = ReplayNetwork(onnx_path)
    assert np.abs(net.forward(x) - np.stack([replay(v) for v in x])).max() < 1e-4


def test_prop_6_is_verified_box_by_box(tmp_path):
    """prop_6 on network 1_1 holds (nnenum and alpha-beta-CROWN agree): no verifier may find otherwise,
    and the falsifier attacks both boxes without a witness outside them."""
    onnx_path, vnnlib = ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx", ACASXU / "prop_6.vnnlib"
    assert len(load(vnnlib).input_boxes()) == 2
    pgd = run_verifier(PGD, validate(PGD.params, {"restarts": 20, "steps": 30}), onnx_path, vnnlib, 60.0,
                       workdir=tmp_path / "pgd")
    assert pgd.result == "unknown" and pgd.error is None
    crown = run_verifier(CROWN, {}, onnx_path, vnnlib, 60.0, workdir=tmp_path / "crown")
    assert crown.result in ("holds", "unknown") and crown.error is None and crown.info["boxes"] == 2


def test_a_counterexample_on_acasxu_replays(tmp_path):
    """prop_2 on network 2_1 is violated (nnenum and alpha-beta-CROWN agree)."""
    onnx_path, vnnlib = ACASXU / "ACASXU_run2a_2_1_batch_2000.onnx", ACASXU / "prop_2.vnnlib"
    v = run_verifier(PGD, validate(PGD.params, {}), onnx_path, vnnlib, 60.0, workdir=tmp_path / "pgd")
    assert v.result == "violated", v.error
    assert check_witness(onnx_path, load(vnnlib), v.witness).valid
