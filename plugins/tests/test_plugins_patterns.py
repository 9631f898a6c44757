"""n-m and block: the pattern is exact, in every group and every block."""

from __future__ import annotations

import copy

import pytest

from harness_plugins.patterns import BLOCK, NM, block_mask

MODELS = ["lenet5", "mlp", "resnet-small"]


def _matrix(layer):
    w = layer.weight.detach()
    return w.reshape(w.shape[0], -1)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (4, 8)])
def test_nm_pattern_is_exact_in_every_group(model, n, m, trained, apply_ctx, digits, h):
    """Every group of m consecutive inputs keeps exactly its n largest weights; layers whose input size
    is not a multiple of m are untouched; the claim's sparsity holds over the layers that fit."""
    import torch

    dense = trained(model)
    pruned = NM.apply(apply_ctx(copy.deepcopy(dense), {"n": n, "m": m}))
    fitted = zeros = 0
    for a, b in zip(h.layers(dense), h.layers(pruned), strict=True):
        wa, wb = _matrix(a), _matrix(b)
        if wa.shape[1] % m:
            assert torch.equal(wa, wb)
            continue
        groups_b = wb.reshape(wb.shape[0], -1, m)
        groups_a = wa.reshape(wa.shape[0], -1, m)
        assert bool(((groups_b != 0).sum(2) == n).all())
        kept = groups_b != 0
        # The kept ones are the n largest magnitudes of their group, unchanged.
        smallest_kept = groups_a.abs().masked_fill(~kept, float("inf")).min(2).values
        largest_dropped = groups_a.abs().masked_fill(kept, -1.0).max(2).values
        assert bool((smallest_kept >= largest_dropped).all())
        assert torch.equal(groups_a[kept], groups_b[kept])
        fitted += wb.numel()
        zeros += int((wb == 0).sum())
    claims = NM.claims({"n": n, "m": m})
    assert claims["n_m"] == f"{n}:{m}" and zeros / fitted == pytest.approx(claims["sparsity"])
    if (n, m) == (2, 4):
        assert h.agreement(dense, pruned, digits.test.x) >= 0.8


def test_nm_rejects_n_not_below_m(trained, apply_ctx):
    with pytest.raises(ValueError, match="smaller than m"):
        NM.apply(apply_ctx(copy.deepcopy(trained("mlp")), {"n": 4, "m": 4}))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("block", [(4, 1), (2, 2)])
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_block_zeros_come_in_whole_blocks(model, block, sparsity, trained, apply_ctx, digits, h):
    """Each tile is all zero or untouched; the sparsity is within 0.5 points overall."""
    import torch

    dense = trained(model)
    params = {"sparsity": sparsity, "block_rows": block[0], "block_cols": block[1]}
    pruned = BLOCK.apply(apply_ctx(copy.deepcopy(dense), params))
    assert abs(h.weight_sparsity(pruned) - sparsity) <= 0.005
    br, bc = block
    for a, b in zip(h.layers(dense), h.layers(pruned), strict=True):
        wa, wb = _matrix(a), _matrix(b)
        for i in range(0, wb.shape[0], br):
            for j in range(0, wb.shape[1], bc):
                tile_b, tile_a = wb[i:i + br, j:j + bc], wa[i:i + br, j:j + bc]
                assert bool((tile_b == 0).all()) or torch.equal(tile_a, tile_b)
    assert BLOCK.claims(params)["block_shape"] == list(block)
    assert BLOCK.claims(params)["sparsity"] == sparsity


@pytest.mark.parametrize("model", MODELS)
def test_block_agrees_with_dense_at_low_sparsity(model, trained, apply_ctx, digits, h):
    """Whole 4x1 blocks cost more accuracy than single weights: at 25% the model still mostly agrees."""
    dense = trained(model)
    pruned = BLOCK.apply(apply_ctx(copy.deepcopy(dense), {"sparsity": 0.25, "block_rows": 4, "block_cols": 1}))
    assert h.agreement(dense, pruned, digits.test.x) >= 0.7


def test_block_mask_drops_the_weakest_tiles():
    """The tiles of least mean squared magnitude go first, partial edge tiles included."""
    import torch

    w = torch.tensor([[1.0, 1.0, 9.0], [1.0, 1.0, 9.0], [5.0, 5.0, 0.1]])
    keep = block_mask(w, 1 / 9, (2, 2))  # the 1x1 corner tile is the weakest
    assert keep.tolist() == [[True, True, True], [True, True, True], [True, True, False]]
    keep = block_mask(w, 5 / 9, (2, 2))  # then the top-left 2x2 tile
    assert keep.tolist() == [[False, False, True], [False, False, True], [True, True, False]]
