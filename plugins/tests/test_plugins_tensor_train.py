"""tensor-train: Linear layers as tensor trains (tensorly TT-SVD), contracted core by core, claims checked."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("tensorly")

from harness_plugins.tensor_train import TENSOR_TRAIN, decompose, factorize, tt_params  # noqa: E402


def test_factorize_balances_the_prime_factors():
    assert factorize(384, 3) == [8, 8, 6]
    assert factorize(1536, 3) == [16, 12, 8]
    assert factorize(10, 3) == [5, 2, 1]
    assert factorize(7, 2) == [7, 1]


def test_contraction_equals_the_matrix_the_cores_stand_for_and_full_bond_is_exact():
    """The core-by-core forward pass is x W^T + b for the cores' W; at full bond, W is the original."""
    import torch

    from harness_plugins.tt_layers import TTLinear

    torch.manual_seed(0)
    lin = torch.nn.Linear(48, 60)
    out_dims, in_dims = factorize(60, 3), factorize(48, 3)
    x = torch.randn(3, 5, 48)
    for bond, exact in ((4, False), (10 ** 6, True)):
        layer = TTLinear(decompose(lin.weight, out_dims, in_dims, bond), lin.bias)
        w = layer.weight_matrix()
        with torch.no_grad():
            assert torch.allclose(layer(x), x @ w.T + lin.bias, atol=1e-5)
        err = float((w - lin.weight).norm() / lin.weight.norm())
        assert (err < 1e-5) == exact
        assert sum(c.numel() for c in layer.cores) == tt_params(out_dims, in_dims, bond)[1]


def test_apply_decomposes_smaller_layers_claims_hold_and_onnx_agrees(trained, apply_ctx, tmp_path, h):
    """Bonds at most the claim, fewer parameters; the host's checker confirms the claims on the saved artifact
    (loaded back through the safe loader), and onnxruntime agrees with torch on the chain of contractions."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    from harness.api import check_artifact
    from harness_plugins.tt_layers import TTLinear

    dense = trained("mlp")
    params = {"bond": 4, "cores": 3}
    out = TENSOR_TRAIN.apply(apply_ctx(copy.deepcopy(dense), params))
    tts = [m for m in out.modules() if isinstance(m, TTLinear)]
    assert tts and all(max(int(c.shape[3]) for c in m.cores) <= 4 for m in tts)
    assert sum(p.numel() for p in out.parameters()) < sum(p.numel() for p in dense.parameters())
    artifact = h.make_artifact(tmp_path / "tt", module=out, claims=TENSOR_TRAIN.claims(params))
    report = check_artifact(artifact)
    assert report.ok and report.of("max_bond_dimension") and report.of("tt_layer_params")
    loose = h.make_artifact(tmp_path / "loose", module=out, export=False, claims={"max_bond_dimension": 2})
    assert not check_artifact(loose).ok
    path = artifact.file("onnx")
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = out(torch.from_numpy(x)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.allclose(got, expected, atol=1e-4)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "MatMul" in ops and "Transpose" in ops  # the chain of small contractions


def test_no_layer_smaller_is_refused(apply_ctx):
    import torch

    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(ValueError, match="no Linear layer gets smaller at bond=64"):
        TENSOR_TRAIN.apply(apply_ctx(module, {"bond": 64, "cores": 2}))


def test_healing_a_tensor_train_language_model_with_finetune(tmp_path):
    """tensor-train then finetune on token windows (next-token training): the cores train, the bonds stay,
    and the healed model's held-out loss is below the raw decomposition's."""
    import math

    import numpy as np
    import torch

    from harness.api import ApplyContext, DatasetContext
    from harness_plugins import hf
    from harness_plugins.retraining import FINETUNE
    from harness_plugins.text import TEXT_LM
    from harness_plugins.tt_layers import TTLinear

    splits = TEXT_LM.load(DatasetContext(params={"source": "python-docs", "seq_len": 32, "max_eval": 32},
                                         cache_dir=tmp_path))
    torch.manual_seed(0)
    lm = hf.tiny_llama(vocab=256, hidden=16, layers=1, heads=2, max_len=64)

    def loss(module):
        ids = torch.from_numpy(np.ascontiguousarray(splits.test.x["input_ids"], dtype=np.int64))
        with torch.no_grad():
            logits = module(ids)
        return float(torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 256), ids[:, 1:].reshape(-1)))

    def ctx(module, params, name):
        (tmp_path / name).mkdir()
        return ApplyContext(module=module, params=params, seed=0, splits=splits, workdir=tmp_path / name,
                            input_shape=splits.input_shape, export_onnx=lambda m, p: p)

    raw = TENSOR_TRAIN.apply(ctx(lm, {"bond": 4, "cores": 2}, "tt"))
    before = loss(raw)
    healed = FINETUNE.apply(ctx(copy.deepcopy(raw), {"epochs": 1, "lr": 3e-3}, "ft"))
    assert math.isfinite(before) and loss(healed) < before
    trains = [m for m in healed.modules() if isinstance(m, TTLinear)]
    assert trains and all(int(c.shape[3]) <= 4 for m in trains for c in m.cores)
