"""``milp``'s input splitting against the exact MILP on whole boxes: the same answers on a small ReLU
network over thresholds from easy to tight; batched CROWN bounds are sound on sampled points; and a
union of boxes holds only when every box does."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from harness.api import export_onnx
from harness_plugins.verifiers import split as splitting
from harness_plugins.verifiers.milp import verify_box
from harness_plugins.verifiers.network import load_network
from harness_plugins.verifiers.split import crown_batch, search


@pytest.fixture(autouse=True)
def split_small(monkeypatch):
    """Split even this small network (it would go to the MILP whole): the MILP only on sub-boxes
    with at most 2 unstable ReLUs."""
    monkeypatch.setattr(splitting, "MILP_ROOT", 0)
    monkeypatch.setattr(splitting, "MILP_UNSTABLE", 2)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    return load_network(export_onnx(m.eval(), tmp_path_factory.mktemp("tiny") / "tiny.onnx", (2,)))


def decide(net, boxes, outputs):
    def replays(x):  # the float64 network as the replay (the suite's replay is onnxruntime)
        y = net.forward(x)[0]
        return any(np.all(a @ y <= b) for a, b in outputs)

    return search(net, boxes, outputs, time.monotonic() + 60, replays,
                  lambda lo, hi, terms, dl: verify_box(net, lo, hi, terms, dl))


def test_splitting_agrees_with_the_whole_box_milp(net):
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 201), np.linspace(-1, 1, 201)), -1).reshape(-1, 2)
    top = net.forward(grid)[:, 0].max()
    answers, splits = [], 0
    for threshold in (top - 0.5, top - 1e-3, top + 1e-3, top + 0.5, top + 5.0):
        outputs = [(np.array([[-1.0, 0.0]]), np.array([-threshold]))]  # unsafe: Y_0 >= threshold
        whole = verify_box(net, lo, hi, outputs, time.monotonic() + 60)["result"]
        split = decide(net, [(lo, hi)], outputs)
        assert split["result"] == whole, (threshold, split, whole)
        answers.append(whole)
        splits += split["info"]["splits"]
        if split["result"] == "violated":
            assert net.forward(split["witness"])[0, 0] >= threshold
    assert answers[:2] == ["violated"] * 2 and answers[-1] == "holds"
    assert splits > 0  # the answers came from splitting, not from one MILP on the whole box


def test_batched_crown_bounds_hold_on_sampled_points(net):
    rng = np.random.default_rng(0)
    centre = rng.uniform(-1, 1, (16, 2))
    lower, upper = centre - 0.2, centre + 0.2
    bounds, _ = crown_batch(net, lower, upper)
    for k in range(16):
        x = rng.uniform(lower[k], upper[k], (500, 2))
        h = x
        for i, op in enumerate(net.ops):
            lo, hi = bounds[i]
            assert np.all(h >= lo[k] - 1e-9) and np.all(h <= hi[k] + 1e-9)
            h = h @ op.w.T + op.b if hasattr(op, "w") else np.maximum(h, 0)


def test_a_union_of_boxes_holds_only_when_every_box_does(net):
    grid = np.random.default_rng(1).uniform(-1, 1, (5000, 2))
    ys = net.forward(grid)[:, 0]
    x_top = grid[ys.argmax()]
    far = (np.array([2.0, 2.0]), np.array([2.0, 2.0]))  # a point box where Y_0 is whatever it is there
    threshold = float(ys.max()) - 1e-3
    outputs = [(np.array([[-1.0, 0.0]]), np.array([-threshold]))]
    near = (x_top - 0.01, x_top + 0.01)
    assert decide(net, [far, near], outputs)["result"] == "violated"
    assert decide(net, [far], outputs)["result"] == verify_box(net, *far, outputs, time.monotonic() + 60)["result"]
