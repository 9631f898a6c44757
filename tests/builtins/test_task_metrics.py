"""Task metrics: top-k, perplexity, embedding fidelity and retrieval, on hand-computed cases."""

import math

import numpy as np

from harness.builtins.suites import metrics


def test_topk():
    logits = np.array([[0.1, 0.9, 0.0, 0.5], [0.8, 0.1, 0.3, 0.2]])
    assert metrics.topk_correct(logits, np.array([1, 2]), 1).tolist() == [True, False]
    assert metrics.topk_correct(logits, np.array([1, 2]), 2).tolist() == [True, True]
    assert metrics.topk_correct(logits, np.array([2, 1]), 3).tolist() == [False, False]


def test_uniform_logits_have_the_vocabulary_as_perplexity():
    ids = np.random.default_rng(0).integers(0, 7, size=(3, 5))
    nll, n = metrics.next_token_nll(np.zeros((3, 5, 7)), ids)
    assert n == 3 * 4 and math.isclose(math.exp(nll / n), 7.0)


def test_perplexity_skips_padding_and_rewards_the_right_token():
    ids = np.array([[1, 2, 0]])
    logits = np.zeros((1, 3, 3))
    logits[0, 0, 2] = 10.0  # position 0 predicts token 2: right
    nll, n = metrics.next_token_nll(logits, ids, attention_mask=np.array([[1, 1, 0]]))
    assert n == 1 and nll < 1e-3


def test_fidelity_and_retrieval():
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((20, 8))
    assert np.allclose(metrics.cosine_fidelity(3 * dense, dense), 1.0)
    assert np.allclose(metrics.retrieval_agreement(dense, dense, 5), 1.0)
    flipped = metrics.cosine_fidelity(-dense, dense)
    assert np.allclose(flipped, -1.0)
    noisy = metrics.retrieval_agreement(rng.standard_normal((20, 8)), dense, 5)
    assert noisy.mean() < 0.6
    nb = metrics.neighbours(dense, 3)
    assert nb.shape == (20, 3) and not (nb == np.arange(20)[:, None]).any()
