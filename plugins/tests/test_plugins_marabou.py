"""The ``marabou`` verifier (maraboupy, an optional extra that CI installs) in its own process: a proof
and a replaying counterexample on a small exported network, a counterexample on a real ACAS Xu
instance, and its availability when maraboupy is absent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.api import Atom, Property, check_witness, export_onnx
from harness.api import load_vnnlib as load
from harness.testing import run_verifier
from harness_plugins.verifiers.marabou import MARABOU, available
from harness_plugins.verifiers.network import load_network

needs_marabou = pytest.mark.skipif(importlib.util.find_spec("maraboupy") is None,
                                   reason="maraboupy is not installed (pip install 'harness-plugins[marabou]')")
ACASXU = Path(__file__).resolve().parents[2] / "tests" / "data" / "vnncomp2021" / "acasxu"


def write(path: Path, lower, upper, unsafe) -> Property:
    prop = Property(lower=tuple(map(float, lower)), upper=tuple(map(float, upper)), num_outputs=2, unsafe=unsafe)
    path.write_text(prop.text())
    return prop


@needs_marabou
def test_marabou_proves_and_refutes_on_a_small_network(tmp_path):
    torch.manual_seed(3)
    onnx_path = export_onnx(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                                          nn.Linear(8, 2)).eval(), tmp_path / "tiny.onnx", (2,))
    net = load_network(onnx_path)
    grid = np.random.default_rng(0).uniform(-1, 1, (4000, 2))
    top = float(net.forward(grid)[:, 0].max())
    holds = tmp_path / "holds.vnnlib"
    write(holds, (-1, -1), (1, 1), ((Atom(abs(top) * 10 + 10, "Y_0"),),))
    v = run_verifier(MARABOU, {}, onnx_path, holds, 60.0, workdir=tmp_path / "holds")
    assert v.result == "holds", v.error
    violated = tmp_path / "violated.vnnlib"
    prop = write(violated, (-1, -1), (1, 1), ((Atom(top - 1e-3, "Y_0"),),))
    v = run_verifier(MARABOU, {}, onnx_path, violated, 60.0, workdir=tmp_path / "violated")
    assert v.result == "violated" and v.raw == "sat", v.error
    assert check_witness(onnx_path, prop, v.witness).valid


@needs_marabou
def test_marabou_refutes_acasxu_prop_2_on_network_2_1(tmp_path):
    """Violated where nnenum and alpha-beta-CROWN agree it is; the witness replays in onnxruntime."""
    onnx_path, vnnlib = ACASXU / "ACASXU_run2a_2_1_batch_2000.onnx", ACASXU / "prop_2.vnnlib"
    v = run_verifier(MARABOU, {}, onnx_path, vnnlib, 120.0, workdir=tmp_path / "run")
    assert v.result == "violated", (v.result, v.error)
    assert check_witness(onnx_path, load(vnnlib), v.witness).valid


def test_availability_names_the_extra():
    ok, reason = available({})
    assert ok == (importlib.util.find_spec("maraboupy") is not None)
    assert ok or "harness-plugins[marabou]" in reason
