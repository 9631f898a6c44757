"""The built-in verifiers: the ONNX reader against onnxruntime, IBP and CROWN bounds that hold on
sampled outputs, the MILP verifier against exhaustive answers, and each verifier in its own process."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.api import Atom, Property, check_witness, export_onnx
from harness.api import load_vnnlib as load
from harness.api import validate_params as validate
from harness.testing import run_verifier
from harness_plugins.verifiers import CROWN, IBP, MILP, PGD, UNSOUND_PGD
from harness_plugins.verifiers.bounds import ibp, lower_bounds
from harness_plugins.verifiers.milp import verify_box
from harness_plugins.verifiers.network import Unsupported, load_network


def exported(module: nn.Module, shape: tuple, path) -> object:
    torch.manual_seed(0)
    return export_onnx(module.eval(), path, shape)


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory):
    """A CNN with every operator kind the reader turns into affine maps, ReLUs and max-pools."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, stride=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 6),
                      nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():  # a non-trivial normalisation, so BatchNormalization is really exercised
        m[1].running_mean.uniform_(-0.5, 0.5)
        m[1].running_var.uniform_(0.5, 2.0)
    return exported(m, (1, 8, 8), tmp_path_factory.mktemp("cnn") / "cnn.onnx")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A 2 -> 8 -> 8 -> 2 ReLU network, small enough to search its input box exhaustively."""
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    return exported(m, (2,), tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def test_reader_computes_what_onnxruntime_computes(cnn_onnx):
    import onnxruntime as ort

    net = load_network(cnn_onnx)
    assert [type(op).__name__ for op in net.ops] == ["Affine", "Relu", "MaxPool", "Affine", "Relu", "Affine",
                                                     "Relu", "Affine"]
    x = np.random.default_rng(0).random((16, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(cnn_onnx), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x.reshape(16, 1, 8, 8)})[0]
    np.testing.assert_allclose(net.forward(x), ref, atol=1e-5)


def test_unsupported_operators_are_named(tmp_path):
    path = exported(nn.Sequential(nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2)), (3,), tmp_path / "s.onnx")
    with pytest.raises(Unsupported, match="operator Sigmoid"):
        load_network(path)


def test_ibp_and_crown_bound_every_sampled_output(cnn_onnx):
    net = load_network(cnn_onnx)
    rng = np.random.default_rng(1)
    centre = rng.random(64)
    lower, upper = centre - 0.05, centre + 0.05
    ys = net.forward(lower + rng.random((5000, 64)) * (upper - lower))
    objective = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 0.0]])
    sampled = (ys @ objective.T).min(axis=0)
    by_ibp = lower_bounds(net, lower, upper, objective, "ibp")
    by_crown = lower_bounds(net, lower, upper, objective, "crown")
    assert np.all(by_ibp <= sampled + 1e-9) and np.all(by_crown <= sampled + 1e-9)
    assert np.all(by_crown >= by_ibp - 1e-9)  # CROWN's intermediate bounds are intersected with IBP's
    out_lo, out_hi = ibp(net, lower, upper)[-1]
    assert np.all(out_lo <= ys.min(axis=0) + 1e-9) and np.all(out_hi >= ys.max(axis=0) - 1e-9)


def test_milp_matches_an_exhaustive_search(tiny_onnx):
    net = load_network(tiny_onnx)
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 801), np.linspace(-1, 1, 801)), -1).reshape(-1, 2)
    margin = net.forward(grid) @ np.array([1.0, -1.0])
    true_min = margin.min()  # the grid's minimum is within the network's variation over a grid step
    slack = 0.05 * max(1.0, abs(true_min))
    a = np.array([[1.0, -1.0]])
    holds = verify_box(net, lower, upper, [(a, np.array([true_min - slack]))], deadline=1e18)
    assert holds["result"] == "holds"
    found = verify_box(net, lower, upper, [(a, np.array([true_min + slack]))], deadline=1e18)
    assert found["result"] == "violated"
    assert float((a @ net.forward(found["witness"])[0])[0]) <= true_min + slack


def write_property(path, lower, upper, unsafe) -> Property:
    prop = Property(lower=tuple(lower), upper=tuple(upper), num_outputs=2, unsafe=unsafe)
    path.write_text(prop.text())
    return prop


def test_milp_answers_through_its_own_process(tiny_onnx, tmp_path):
    """A replaying witness where one exists, holds where none can, as VNN-COMP runs tools."""
    net = load_network(tiny_onnx)
    y0 = float(net.forward(np.array([0.3, -0.2]))[0, 0])
    violated = tmp_path / "violated.vnnlib"
    prop = write_property(violated, (-1, -1), (1, 1), ((Atom(y0 - 0.01, "Y_0"),),))  # (0.3, -0.2) is a witness
    verdict = run_verifier(MILP, {}, tiny_onnx, violated, 30.0, workdir=tmp_path / "run")
    assert verdict.result == "violated" and verdict.raw == "sat"
    assert check_witness(tiny_onnx, prop, verdict.witness).valid
    assert verdict.outputs is not None and verdict.time_s > 0
    grid = np.random.default_rng(0).uniform(-1, 1, (2000, 2))
    unreachable = tmp_path / "holds.vnnlib"
    write_property(unreachable, (-1, -1), (1, 1), ((Atom(float(np.abs(net.forward(grid)).max()) * 100 + 100, "Y_0"),),))
    for spec in (IBP, CROWN, MILP):
        v = run_verifier(spec, {}, tiny_onnx, unreachable, 30.0, workdir=tmp_path / spec.name)
        assert v.result == "holds", (spec.name, v.error)


def test_falsifier_and_canary_on_an_easy_counterexample(toy_vnnlib, tmp_path):
    """PGD and the unsound canary both find the contract network's counterexample (it fills much of the box)."""
    prop = load(toy_vnnlib.violated)
    for spec in (PGD, UNSOUND_PGD):
        params = validate(spec.params, {"restarts": 3, "steps": 20})
        v = run_verifier(spec, params, toy_vnnlib.onnx, toy_vnnlib.violated, 60.0, workdir=tmp_path / spec.name)
        assert v.result == "violated", v.error
        assert check_witness(toy_vnnlib.onnx, prop, v.witness).valid
    # On a property that holds, the falsifier says unknown; the canary claims a proof it does not have.
    pgd = run_verifier(PGD, validate(PGD.params, {"restarts": 2, "steps": 5}), toy_vnnlib.onnx, toy_vnnlib.holds,
                       60.0, workdir=tmp_path / "pgd-holds")
    canary = run_verifier(UNSOUND_PGD, validate(UNSOUND_PGD.params, {}), toy_vnnlib.onnx, toy_vnnlib.holds, 60.0,
                          workdir=tmp_path / "canary-holds")
    assert (pgd.result, canary.result) == ("unknown", "holds")


def test_unsupported_network_is_an_unknown_verdict_with_the_operator(tmp_path):
    path = exported(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)), (2,), tmp_path / "t.onnx")
    prop = tmp_path / "p.vnnlib"
    write_property(prop, (0, 0), (1, 1), ((Atom("Y_0", "Y_1"),),))
    v = run_verifier(CROWN, {}, path, prop, 30.0, workdir=tmp_path / "run")
    assert v.result == "unknown" and "operator Tanh" in v.error
