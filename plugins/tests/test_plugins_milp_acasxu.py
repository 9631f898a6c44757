"""``milp``'s branch and bound on ACAS Xu-sized networks: the forward symbolic bounds and the CROWN
bounds they seed contain every sampled activation of small random ReLU networks; the numpy PGD's
gradient is the margin's; on the committed ACAS Xu instances that are violated, ``milp`` never says
holds and its witness replays in onnxruntime; and it proves a committed instance that holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import check_witness
from harness.api import load_vnnlib as load
from harness.testing import run_verifier
from harness_plugins.verifiers import MILP
from harness_plugins.verifiers.network import Affine, Network, Relu
from harness_plugins.verifiers.npattack import margin_and_grad, stack
from harness_plugins.verifiers.split import crown_batch
from harness_plugins.verifiers.symbolic import forward_bounds

ACASXU = Path(__file__).resolve().parents[2] / "tests" / "data" / "vnncomp2021" / "acasxu"
#: (network, property): violated where nnenum and alpha-beta-CROWN agree (VNN-COMP 2021 results).
VIOLATED = [("1_5", "prop_2"), ("3_6", "prop_2"), ("2_1", "prop_2"), ("1_9", "prop_7"), ("2_9", "prop_8")]


def random_net(seed: int, sizes: tuple[int, ...]) -> Network:
    rng = np.random.default_rng(seed)
    ops: list = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        if i:
            ops.append(Relu())
        ops.append(Affine(rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in)), rng.normal(0, 0.3, n_out)))
    return Network(ops, (sizes[0],), sizes[0], sizes[-1])


def activations(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Every op's input, then the output, for points ``x``."""
    out, h = [], x
    for op in net.ops:
        out.append(h)
        h = h @ op.w.T + op.b if isinstance(op, Affine) else np.maximum(h, 0.0)
    return out + [h]


@pytest.mark.parametrize("seed", range(6))
def test_forward_and_seeded_crown_bounds_contain_sampled_activations(seed):
    net = random_net(seed, (3, 12, 12, 12, 4))
    rng = np.random.default_rng(100 + seed)
    centre = rng.uniform(-1, 1, (8, 3))
    half = rng.uniform(0.01, 1.0, (8, 3))
    lower, upper = centre - half, centre + half
    fwd, _ = forward_bounds(net, lower, upper)
    seeded, _ = crown_batch(net, lower, upper, fwd)
    unstable = 0
    for k in range(8):
        acts = activations(net, rng.uniform(lower[k], upper[k], (400, 3)))
        for i, h in enumerate(acts):
            for lo, hi in (fwd[i], seeded[i]):
                assert np.all(h >= lo[k] - 1e-9) and np.all(h <= hi[k] + 1e-9), (seed, k, i)
            # Seeded CROWN only tightens: intersected with the forward bounds it starts from.
            assert np.all(seeded[i][0][k] >= fwd[i][0][k] - 1e-12) and np.all(seeded[i][1][k] <= fwd[i][1][k] + 1e-12)
        unstable += sum(int(((lo[k] < 0) & (hi[k] > 0)).sum()) for lo, hi in fwd[1:-1])
    assert unstable > 0  # the relaxations were exercised, not only stable neurons


def test_the_numpy_attack_follows_the_margins_gradient():
    net = random_net(7, (5, 10, 10, 3))
    a, b = stack([(np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]), np.array([0.1, 0.2])),
                  (np.array([[-1.0, 0.0, 1.0]]), np.array([0.0]))])
    x = np.random.default_rng(8).uniform(-1, 1, (20, 5))
    m, g = margin_and_grad(net, x, a, b)
    eps = 1e-6
    for d in range(5):
        step = np.zeros(5)
        step[d] = eps
        numeric = (margin_and_grad(net, x + step, a, b)[0] - margin_and_grad(net, x - step, a, b)[0]) / (2 * eps)
        # Away from kinks (almost every random point) the subgradient is the derivative.
        assert np.mean(np.abs(numeric - g[:, d]) < 1e-4) >= 0.9


@pytest.mark.parametrize(("name", "prop"), VIOLATED)
def test_milp_never_says_holds_on_a_violated_acasxu_instance(name, prop, tmp_path):
    onnx_path, vnnlib = ACASXU / f"ACASXU_run2a_{name}_batch_2000.onnx", ACASXU / f"{prop}.vnnlib"
    v = run_verifier(MILP, {}, onnx_path, vnnlib, 30.0, workdir=tmp_path)
    assert v.result in ("violated", "timeout"), (v.result, v.error)
    if v.result == "violated":
        assert check_witness(onnx_path, load(vnnlib), v.witness).valid


def test_milp_proves_a_real_acasxu_instance_that_holds(tmp_path):
    """prop_3 on network 1_1 holds (nnenum and alpha-beta-CROWN agree): CROWN alone does not prove it,
    the branch and bound does (in seconds of CPU; the timeout only guards against a hang)."""
    onnx_path, vnnlib = ACASXU / "ACASXU_run2a_1_1_batch_2000.onnx", ACASXU / "prop_3.vnnlib"
    v = run_verifier(MILP, {}, onnx_path, vnnlib, 600.0, workdir=tmp_path)
    assert v.result == "holds", (v.result, v.error, v.info)
    assert v.info["by"] == "split" and v.info["splits"] > 0
