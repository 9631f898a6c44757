"""The tensor-train claims (``max_bond_dimension``, ``tt_layer_params``) measured on torch modules holding
tensor-train layers: a module with a parameter list ``cores`` of 4-D tensors."""

from __future__ import annotations

import pytest

from harness.measure.claims import check_claims
from harness.measure.weights import TorchReader

torch = pytest.importorskip("torch")


class TT(torch.nn.Module):
    """Cores of the given shapes and an optional bias of ``out`` features."""

    def __init__(self, shapes, bias=True, extra=0):
        super().__init__()
        self.cores = torch.nn.ParameterList(torch.nn.Parameter(torch.ones(s)) for s in shapes)
        out = 1
        for s in shapes:
            out *= s[1]
        self.bias = torch.nn.Parameter(torch.zeros(out)) if bias else None
        self.extra = torch.nn.Parameter(torch.zeros(extra)) if extra else None


def net(*layers):
    return torch.nn.Sequential(*layers, torch.nn.Linear(4, 2))


GOOD = [(1, 4, 4, 3), (3, 4, 4, 2), (1 * 2, 4, 4, 1)]  # 16x16x4 = 64 x 64 matrix, 48 + 96 + 32 = 176 < 4096


def test_bonds_at_most_the_claim_hold_and_beyond_it_fail():
    claims = {"max_bond_dimension": 3, "tt_layer_params": "cores only"}
    report = check_claims(claims, [TorchReader(net(TT(GOOD)))])
    assert report.ok, report.failures()
    assert [c.measured for c in report.of("max_bond_dimension")] == [3]
    assert [c.measured for c in report.of("tt_layer_params")] == [176 + 64]
    assert not check_claims({"max_bond_dimension": 2}, [TorchReader(net(TT(GOOD)))]).ok


@pytest.mark.parametrize("shapes, extra, why", [
    ([(1, 4, 4, 3), (2, 4, 4, 1)], 0, "adjacent cores' bonds differ"),
    ([(2, 4, 4, 3), (3, 4, 4, 1)], 0, "the outer bonds are not 1"),
    ([(1, 2, 2, 64), (64, 2, 2, 1)], 0, "cores hold 512 parameters, the dense matrix 16"),
    (GOOD, 5, "cores hold 176"),  # a parameter beyond the cores and bias
])
def test_a_malformed_or_oversized_train_fails(shapes, extra, why):
    report = check_claims({"max_bond_dimension": 64, "tt_layer_params": "cores only"},
                          [TorchReader(net(TT(shapes, extra=extra)))])
    failed = report.failures()
    assert failed and any(why in c.detail for c in failed)


def test_no_tensor_train_layer_fails_and_onnx_alone_leaves_it_unchecked():
    report = check_claims({"max_bond_dimension": 4}, [TorchReader(net())])
    assert not report.ok and "no tensor-train layer" in report.failures()[0].detail

    class NoTrains:
        format = "onnx"

        def tensors(self):
            return []

        def tensor_trains(self):
            return None

    assert "told apart on a torch module" in check_claims({"max_bond_dimension": 4}, [NoTrains()]).unchecked[
        "max_bond_dimension"]
